/* cli.h - subcommands of the gridgate program. Each takes the arguments
 * after its own name and returns the process exit status: 0 success,
 * 1 failure at run time, 2 bad usage. Errors go to stderr in one line. */
#ifndef GG_CLI_CLI_H
#define GG_CLI_CLI_H

int gg_cmd_run(int argc, char **argv);
int gg_cmd_demo(int argc, char **argv);
int gg_cmd_pki(int argc, char **argv);
int gg_cmd_seed(int argc, char **argv);
int gg_cmd_config(int argc, char **argv);
/* gg_cmd_admin - `admin SUBCOMMAND ...`: the dispatcher (admin.c); queues, dlq. */
int gg_cmd_admin(int argc, char **argv);
/* gg_cmd_admin_channel - `admin channel -c FILE` (admin_channel.c). */
int gg_cmd_admin_channel(int argc, char **argv);
/* gg_cmd_admin_audit - `admin audit verify -c FILE` (admin_audit.c). */
int gg_cmd_admin_audit(int argc, char **argv);
/* gg_cmd_admin_publish_outage - `admin publish-outage -c FILE ...` (admin_publish.c). */
int gg_cmd_admin_publish_outage(int argc, char **argv);

/* gg_cmd_bench - `bench http|baseline` (bench_http.c, bench_base.c). */
int gg_cmd_bench(int argc, char **argv);
int gg_cmd_bench_http(int argc, char **argv);
int gg_cmd_bench_baseline(int argc, char **argv);
/* gg_cmd_admin_probe - `admin probe-capacity -c FILE` (admin_probe.c). */
int gg_cmd_admin_probe(int argc, char **argv);
/* gg_cmd_prepare - `prepare -c FILE` (prepare.c). */
int gg_cmd_prepare(int argc, char **argv);

/* gg_cli_parse_int - strict decimal within [min, max]; -1 on error. */
int gg_cli_parse_int(const char *s, long long min, long long max, long long *out);

/* gg_cli_self_path - absolute path of the running executable. */
const char *gg_cli_self_path(void);

#endif
