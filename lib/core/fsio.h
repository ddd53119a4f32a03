/*
 * fsio - the two steps of a durable file write that every store repeats.
 *
 * The spool, the received store, the dashboard site and the terminal
 * filter all write whole buffers and, where a crash must not lose what
 * was accepted, make a rename durable by syncing the directory. The loops
 * are short but easy to get wrong (EINTR, a short write, a write of 0):
 * here once.
 */
#ifndef TLSRPT_FSIO_H
#define TLSRPT_FSIO_H

#include <stddef.h>

/* Write all 'n' bytes of 'p' to 'fd', again after EINTR and short writes.
 * 0, or -1 with errno set (EIO when the kernel wrote nothing). */
int fsio_write_all(int fd, const void *p, size_t n);

/* fsync the directory 'dir', so that the entries just made or renamed in
 * it survive a crash. 0, or -1 with errno set. */
int fsio_fsync_dir(const char *dir);

#endif
