/* file: whole-file reading with a size limit, and atomic writing (write to a
 * temporary name beside the target, fsync, rename into place), so that an error or
 * an interrupted run never leaves a half-written output under the real name.
 * Not for: any file format (those are the other io modules). */
#ifndef GAD_IO_FILE_H
#define GAD_IO_FILE_H
#include <stdio.h>
#include <stddef.h>

/* Read all of `path` (at most max_bytes) into a new buffer the caller frees.
 * Returns 0, or -1 with err_get() = "PATH: reason". */
int file_read_all(const char *path, size_t max_bytes, unsigned char **data, size_t *len);

typedef struct {
    FILE *f;          /* write here */
    char *path;       /* final name (owned) */
    char *tmp;        /* temporary name (owned) */
} AtomicFile;

/* Open "PATH.tmp.PID" for writing. Returns 0 or -1 (err set). */
int afile_open(AtomicFile *af, const char *path);
/* Flush, check for write errors, rename into place. On failure the temporary is
 * removed and -1 returned (err set). Always releases af. */
int afile_commit(AtomicFile *af);
/* Give up: close and remove the temporary. */
void afile_abort(AtomicFile *af);
/* Create a directory and its parents (mkdir -p). Returns 0 or -1 (err set). */
int file_mkdirs(const char *dir);
int file_exists(const char *path);

#endif
