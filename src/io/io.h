/* io.h — what other modules may use of src/io beyond include/protium.h:
 * the CSV reader on a piece of a file, for the engine's CSV source, which
 * cuts files at record starts itself and must still name lines as the
 * file numbers them.
 */
#ifndef PT_IO_H
#define PT_IO_H

#include <stdint.h>

#include "protium.h"

/* The number of \n bytes in d[0, n). */
int64_t pt__csv_count_newlines(const char *d, int64_t n);

/* pt_csv_record_start that also adds to *newlines the \n bytes before the
 * start it returns (one pass for both). */
int64_t pt__csv_record_start_lines(const char *d, int64_t len, int64_t offset,
                                   const pt_csv_options *opts, int64_t *newlines);

/* For each of targets[0, n) (ascending, each in [1, len)), the first record
 * start at or after it into starts[k] and its line (1 + the \n bytes before
 * it) into lines[k]; the end of the data where none is left. Scans the text
 * once, on up to `threads` threads (the calling one included), none given
 * under min_span bytes. Fails only for want of memory. */
int pt__csv_cuts(const char *d, int64_t len, const int64_t *targets, int64_t n,
                 const pt_csv_options *opts, int threads, int64_t min_span, int64_t *starts,
                 int64_t *lines, pt_error *err);

/* The starts of pt__csv_cuts without their lines, each found from the
 * bytes near its target alone: 1 when every one was, 0 when some target
 * needs the scan from the data's start (pt__csv_cuts). */
int pt__csv_cuts_near(const char *d, int64_t len, const int64_t *targets, int64_t n,
                      const pt_csv_options *opts, int64_t *starts);

/* The bytes of the blank line at d[i] (i a record start): 1 for \n, 2 for
 * \r\n, 0 when the line is not blank (a line of spaces is not). A blank
 * line is no record where the schema has two or more columns: the reader,
 * the counts and inference skip it; where it has one, it is a record of one
 * empty field (as in DuckDB), so that a one-column file's nulls read back. */
int64_t pt__csv_blank_line(const char *d, int64_t len, int64_t i, const pt_csv_options *o);
/* The first byte at or after the record start i that does not begin a
 * blank line, adding the blank lines passed to *lines. */
int64_t pt__csv_skip_blank_lines(const char *d, int64_t len, int64_t i, const pt_csv_options *o,
                                 int64_t *lines);
/* Where the header (or, without one, the record that gives the number of
 * columns) of the file d[0, len) starts: the first line that is not blank,
 * or 0 in a file of blank lines only (one column, as in DuckDB); len when
 * len is 0. Adds the blank lines before it to *lines. */
int64_t pt__csv_header_start(const char *d, int64_t len, const pt_csv_options *o,
                             int64_t *lines);

/* The rows a PERMISSIVE read of the records that start in d[0, len) (a
 * range the cuts made, 0 being a record start) gives for a schema of ncols
 * columns: blank lines are records only where ncols is 1. With header, d
 * starts its file: the header (pt__csv_header_start) and the blank lines
 * before it are not counted. One scan of the quotes and newlines, no
 * parse. */
int64_t pt__csv_count_records(const char *d, int64_t len, int64_t ncols, int header,
                              const pt_csv_options *opts);

/* pt__csv_count_records for a FAILFAST count: also checks each record's
 * structure as the parser does (ncols fields, quotes closed, nothing
 * between a closing quote and the end of its field), from the same masks,
 * without converting a value; header as there (the header is not
 * checked). On PT_OK *records holds the rows; the first malformed record
 * fails it with PT_EFORMAT and the parser's message, naming `name` and the
 * record's line (first_line: the line d starts on). */
int pt__csv_check_records(const char *d, int64_t len, int64_t ncols, int header,
                          int64_t first_line, const char *name, const pt_csv_options *opts,
                          int64_t *records, pt_error *err);

/* How the record-start scan makes its 64-byte masks. */
enum {
  PT__CSV_SCAN_BYTES,  /* no masks: a byte at a time */
  PT__CSV_SCAN_PLAIN,  /* masks made a byte at a time (portable C) */
  PT__CSV_SCAN_SSE2,   /* four 16-byte compares per byte class */
  PT__CSV_SCAN_AVX2,   /* two 32-byte compares, carry-less multiply */
  PT__CSV_SCAN_AVX512, /* one 64-byte compare to a mask register */
};
/* Makes the scan use `level` where this build and CPU have it, else (and
 * for -1) the best they have; returns the level now used. For tests that
 * compare the levels (a scan under way keeps the one it started with). */
int pt__csv_scan_level(int level);

/* pt_csv_read over data[0, len) that numbers lines from first_line (the line
 * of the file on which data starts) in its messages. Same ownership as
 * pt_csv_read: on PT_OK the caller owns *schema_out and *out. */
int pt__csv_read_lines(const char *data, int64_t len, int64_t begin, int64_t end,
                       int64_t first_line, const char *name, const pt_csv_options *opts,
                       struct ArrowSchema *schema_out, struct ArrowArray *out, pt_error *err);
/* The same from begin, a record start (0 or one this found), over the
 * records that start before end: on PT_OK *next is where the next one
 * starts (len at the end) and *next_line its line. No scan for the end. */
int pt__csv_read_from(const char *data, int64_t len, int64_t begin, int64_t end,
                      int64_t first_line, const char *name, const pt_csv_options *opts,
                      struct ArrowSchema *schema_out, struct ArrowArray *out, int64_t *next,
                      int64_t *next_line, pt_error *err);

/* 1 (the default): the CSV reader splits common records on a fast path;
 * tests set 0 to hold it against the general one. */
extern int pt__csv_fast_records;

#endif /* PT_IO_H */
