/* config.h - the configuration file: INI sections of `key = value`.
 *
 * Every key gridgate knows is declared once in a table (config.c) with its
 * type, default, bounds and one sentence of documentation; an unknown
 * section or key, a value of the wrong type or out of bounds, is an error
 * that names the file, line and key. Keys are addressed as "section.key".
 * Relative paths in values of type path are resolved against the directory
 * of the config file. A gg_config is immutable after load and may be read
 * from any thread.
 */
#ifndef GG_CORE_CONFIG_H
#define GG_CORE_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "core/err.h"

typedef struct gg_config gg_config;

/* gg_config_load - parse path. On failure writes a one-line reason to err
 * (size errsz) and returns GG_ECONFIG or GG_EIO; *out is untouched. */
gg_err gg_config_load(const char *path, gg_config **out, char *err, size_t errsz);

/* gg_config_parse - as gg_config_load, from text; base_dir resolves paths. */
gg_err gg_config_parse(const char *text, const char *base_dir, gg_config **out,
                       char *err, size_t errsz);

void gg_config_free(gg_config *cfg);

/* Getters: name is "section.key" and must be declared in the table (else
 * panic: a programming error). They return the file's value or the default.
 * Strings are owned by cfg. Path values come back absolute. */
const char *gg_config_str(const gg_config *cfg, const char *name);
int64_t gg_config_int(const gg_config *cfg, const char *name);
int gg_config_bool(const gg_config *cfg, const char *name);

/* gg_config_is_set - whether the file gave name explicitly. */
int gg_config_is_set(const gg_config *cfg, const char *name);

/* gg_config_path_beside_store - the path name if it is set, else file
 * in the directory of store.path (file alone when store.path has none),
 * written into buf (size bufsz). NULL when that does not fit in buf. */
const char *gg_config_path_beside_store(const gg_config *cfg, const char *name, const char *file,
                                        char *buf, size_t bufsz);

/* gg_config_print_docs - the key table as Markdown (for docs/config.md). */
void gg_config_print_docs(FILE *f);

/* gg_config_check - the effective configuration, one `name = value` a line,
 * secrets shown as "(set)". */
void gg_config_dump(const gg_config *cfg, FILE *f);

#endif
