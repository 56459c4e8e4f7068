/* prepjob.h - data preparation on a schedule inside the utility role.
 *
 * With utility.prepare_interval_s > 0, one thread with its own marketing
 * connection rebuilds the monthly usage summaries (gg_mkt_prepare_usage)
 * at start and then every interval. It runs outside the governor on
 * purpose: schedule it for quiet hours. Failures are logged and retried at
 * the next interval. Stopping wakes it at once.
 */
#ifndef GG_UTILITY_PREPJOB_H
#define GG_UTILITY_PREPJOB_H

#include "core/config.h"
#include "core/err.h"

typedef struct gg_prepjob gg_prepjob;

/* gg_prepjob_start - start the thread, or set *out NULL when the schedule
 * is off. */
gg_err gg_prepjob_start(const gg_config *cfg, gg_prepjob **out);
void gg_prepjob_stop(gg_prepjob *j);

#endif
