/* csv_num.h — the CSV reader's field parsers (csv_num.c), for csv.c and
 * the tests. Each reads exactly the n bytes at s (no terminator needed, no
 * byte past s[n - 1] read) and returns 1 with *out set, or 0 when the text
 * is not a value of its type (*out then unspecified). */
#ifndef PT_IO_CSV_NUM_H
#define PT_IO_CSV_NUM_H

#include <stdint.h>

/* true / false in any case. */
int pt__csv_parse_bool(const char *s, int64_t n, int64_t *out);
/* [+-]digits within int64. */
int pt__csv_parse_int(const char *s, int64_t n, int64_t *out);
/* [+-]digits[.digits][(e|E)[+-]digits], or what strtod reads as inf or nan:
 * the double nearest the text (ties to even), as strtod gives. */
int pt__csv_parse_double(const char *s, int64_t n, double *out);
/* YYYY-MM-DD to days since 1970-01-01. */
int pt__csv_parse_date(const char *s, int64_t n, int64_t *out);
/* YYYY-MM-DD[(T| )HH:MM[:SS[.f{1,9}]][Z]] to microseconds since the epoch. */
int pt__csv_parse_ts(const char *s, int64_t n, int64_t *out);

#endif /* PT_IO_CSV_NUM_H */
