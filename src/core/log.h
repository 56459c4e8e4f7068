/* log.h - one line per event, key=value, on stderr; personal data masking.
 *
 * gg_log writes "ts=... level=... comp=... msg=\"...\" k=v ..." atomically
 * (one write per line). Callers pass personal data only through the
 * gg_mask_* helpers; secrets (keys, tokens) are never passed at all.
 * Thread-safe.
 */
#ifndef GG_CORE_LOG_H
#define GG_CORE_LOG_H

#include <stddef.h>

typedef enum gg_log_level {
    GG_LOG_DEBUG = 0,
    GG_LOG_INFO = 1,
    GG_LOG_WARN = 2,
    GG_LOG_ERROR = 3,
} gg_log_level;

/* gg_log_set_level - lines below level are dropped. Default INFO. */
void gg_log_set_level(gg_log_level level);

/* gg_log_set_component - tag added to every line of this process ("portal"). */
void gg_log_set_site(const char *site);

/* gg_log - printf-style; fmt should produce `msg="..." key=value ...`. */
void gg_log(gg_log_level level, const char *comp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define gg_debug(comp, ...) gg_log(GG_LOG_DEBUG, comp, __VA_ARGS__)
#define gg_info(comp, ...) gg_log(GG_LOG_INFO, comp, __VA_ARGS__)
#define gg_warn(comp, ...) gg_log(GG_LOG_WARN, comp, __VA_ARGS__)
#define gg_error(comp, ...) gg_log(GG_LOG_ERROR, comp, __VA_ARGS__)

/* gg_panic - broken invariant: log and abort. Never returns. */
void gg_panic(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
#define GG_PANIC(...) gg_panic(__FILE__, __LINE__, __VA_ARGS__)
#define GG_ASSERT(c) do { if (!(c)) GG_PANIC("assertion failed: %s", #c); } while (0)

/* Masking of personal data. Each writes a NUL-terminated masked copy of in
 * (UTF-8) into out (size outsz, truncated safely) and returns out.
 *   name:    first character kept, the rest '*'        张三丰 -> 张**
 *   phone:   first 3 and last 4 digits kept             138****5678
 *   id_no:   first 6 and last 4 kept                    320102********1234
 *   address: district kept, street and number hidden    南京市玄武区****
 */
char *gg_mask_name(const char *in, char *out, size_t outsz);
char *gg_mask_phone(const char *in, char *out, size_t outsz);
char *gg_mask_id_no(const char *in, char *out, size_t outsz);
char *gg_mask_address(const char *in, char *out, size_t outsz);

#endif
