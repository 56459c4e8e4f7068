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

/* gg_cli_parse_int - strict decimal within [min, max]; -1 on error. */
int gg_cli_parse_int(const char *s, long long min, long long max, long long *out);

/* gg_cli_self_path - absolute path of the running executable. */
const char *gg_cli_self_path(void);

#endif
