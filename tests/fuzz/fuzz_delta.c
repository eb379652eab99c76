/* fuzz_delta.c — libFuzzer target for what src/delta reads from a table's
 * log: the input is parsed as JSON (a commit line, a _last_checkpoint),
 * as a schemaString mapped to Arrow, as the stats of an add action tested
 * against a filter on typed columns, and as partition values, dates and
 * timestamps. Errors are fine; a crash, a leak or an out-of-bounds read
 * is a bug.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "delta/delta.h"

static struct ArrowSchema schema;
static pt_parquet_filter *filter;

static void setup(void) {
  pt_error err;
  pt_schema_init(&schema, "+s", "", 0, 5, &err);
  pt_schema_init(schema.children[0], "l", "id", ARROW_FLAG_NULLABLE, 0, &err);
  pt_schema_init(schema.children[1], "u", "s", ARROW_FLAG_NULLABLE, 0, &err);
  pt_schema_init(schema.children[2], "tsu:UTC", "ts", ARROW_FLAG_NULLABLE, 0, &err);
  pt_schema_init(schema.children[3], "tdD", "d", ARROW_FLAG_NULLABLE, 0, &err);
  pt_schema_init(schema.children[4], "d:10,2", "p", ARROW_FLAG_NULLABLE, 0, &err);
  pt_parquet_filter *a, *b, *c, *ab;
  int64_t v = 5, t = 1000000;
  double x = 1.5;
  pt_parquet_filter_int("id", PT_PARQUET_GT, &v, 1, &a, &err);
  pt_parquet_filter_int("ts", PT_PARQUET_LE, &t, 1, &b, &err);
  pt_parquet_filter_double("p", PT_PARQUET_EQ, &x, 1, &c, &err);
  pt_parquet_filter_combine(PT_PARQUET_AND, a, b, &ab, &err);
  pt_parquet_filter_combine(PT_PARQUET_OR, ab, c, &filter, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!filter) setup();
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  pt_error err;
  pt__json *j = NULL;
  if (pt__json_parse((const char *)data, (int64_t)size, &j, &err) == PT_OK) pt__json_free(j);
  struct ArrowSchema a;
  if (pt__delta_schema_to_arrow(text, &a, &err) == PT_OK) {
    pt_buf b = {0};
    (void)pt__delta_schema_from_arrow(&a, &b, &err);
    pt_buf_free(&b);
    a.release(&a);
  }
  /* The input as a file's stats and as its partition value of "p". */
  char *part[] = {"p"};
  char *values[] = {text};
  pt__delta_snapshot s = {0};
  s.partition_columns = part;
  s.n_partition_columns = 1;
  pt__delta_file f = {0};
  f.path = "x.parquet";
  f.values = values;
  f.stats = text;
  (void)pt__delta_file_may_match(filter, &s, &f, &schema);
  static const char *const formats[] = {"b", "i", "g", "tdD", "tsu:", "d:10,2", "u"};
  for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
    char *out = NULL;
    if (pt__delta_partition_value(formats[i], text, &out, &err) == PT_OK) pt__free(out);
  }
  int64_t v;
  (void)pt__delta_parse_date(text, &v);
  (void)pt__delta_parse_timestamp(text, &v);
  char *p = pt__delta_unescape_path(text);
  pt__free(p);
  free(text);
  return 0;
}
