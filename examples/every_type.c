/* every_type.c — writes an Arrow IPC file holding a column of every Arrow
 * type (but the month and day-time intervals, which pyarrow's Python layer,
 * reading it in `make demo`, cannot hold), with nulls at every level of
 * nesting, a dictionary column whose dictionary grows from batch to batch
 * (written as deltas), an extension column, and three record batches.
 * `make demo` reads it back with pyarrow and `protium cat`.
 *
 *   build/examples/every_type /tmp/every_type.arrow
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <protium.h>

#define NULLABLE ARROW_FLAG_NULLABLE
#define N_COLUMNS 45

/* Propagates a failed status out of the enclosing function. */
#define TRY(call)                  \
  do {                             \
    int rc_ = (call);              \
    if (rc_ != PT_OK) return rc_;  \
  } while (0)

/* ------------------------------------------------------------------------ */
/* The schema */

static int make_schema(struct ArrowSchema *s, pt_error *err) {
  TRY(pt_schema_init(s, "+s", "", 0, N_COLUMNS, err));
  struct ArrowSchema **c = s->children;
  TRY(pt_schema_init(c[0], "l", "id", 0, 0, err)); /* the one column without nulls */
  TRY(pt_schema_init(c[1], "n", "null", NULLABLE, 0, err));
  TRY(pt_schema_init(c[2], "b", "bool", NULLABLE, 0, err));
  TRY(pt_schema_init(c[3], "c", "int8", NULLABLE, 0, err));
  TRY(pt_schema_init(c[4], "C", "uint8", NULLABLE, 0, err));
  TRY(pt_schema_init(c[5], "s", "int16", NULLABLE, 0, err));
  TRY(pt_schema_init(c[6], "S", "uint16", NULLABLE, 0, err));
  TRY(pt_schema_init(c[7], "i", "int32", NULLABLE, 0, err));
  TRY(pt_schema_init(c[8], "I", "uint32", NULLABLE, 0, err));
  TRY(pt_schema_init(c[9], "l", "int64", NULLABLE, 0, err));
  TRY(pt_schema_init(c[10], "L", "uint64", NULLABLE, 0, err));
  TRY(pt_schema_init(c[11], "e", "float16", NULLABLE, 0, err));
  TRY(pt_schema_init(c[12], "f", "float32", NULLABLE, 0, err));
  TRY(pt_schema_init(c[13], "g", "float64", NULLABLE, 0, err));
  TRY(pt_schema_init(c[14], "u", "utf8", NULLABLE, 0, err));
  TRY(pt_schema_init(c[15], "U", "large_utf8", NULLABLE, 0, err));
  TRY(pt_schema_init(c[16], "z", "binary", NULLABLE, 0, err));
  TRY(pt_schema_init(c[17], "Z", "large_binary", NULLABLE, 0, err));
  TRY(pt_schema_init(c[18], "w:4", "fixed_size_binary", NULLABLE, 0, err));
  TRY(pt_schema_init(c[19], "tdD", "date32", NULLABLE, 0, err));
  TRY(pt_schema_init(c[20], "tss:", "timestamp_s", NULLABLE, 0, err));
  TRY(pt_schema_init(c[21], "tsm:UTC", "timestamp_ms_utc", NULLABLE, 0, err));
  TRY(pt_schema_init(c[22], "tsu:", "timestamp_us", NULLABLE, 0, err));
  TRY(pt_schema_init(c[23], "tsn:Europe/Paris", "timestamp_ns_paris", NULLABLE, 0, err));
  TRY(pt_schema_init(c[24], "tDm", "duration_ms", NULLABLE, 0, err));
  TRY(pt_schema_init(c[25], "d:12,3", "decimal", NULLABLE, 0, err));
  TRY(pt_schema_init(c[26], "+l", "list", NULLABLE, 1, err));
  TRY(pt_schema_init(c[26]->children[0], "i", "item", NULLABLE, 0, err));
  TRY(pt_schema_init(c[27], "+L", "large_list", NULLABLE, 1, err));
  TRY(pt_schema_init(c[27]->children[0], "u", "item", NULLABLE, 0, err));
  TRY(pt_schema_init(c[28], "+w:3", "fixed_size_list", NULLABLE, 1, err));
  TRY(pt_schema_init(c[28]->children[0], "f", "item", NULLABLE, 0, err));
  /* struct<x: int64, y: utf8, inner: struct<ok: bool>> */
  struct ArrowSchema *st = c[29];
  TRY(pt_schema_init(st, "+s", "struct", NULLABLE, 3, err));
  TRY(pt_schema_init(st->children[0], "l", "x", NULLABLE, 0, err));
  TRY(pt_schema_init(st->children[1], "u", "y", NULLABLE, 0, err));
  TRY(pt_schema_init(st->children[2], "+s", "inner", NULLABLE, 1, err));
  TRY(pt_schema_init(st->children[2]->children[0], "b", "ok", NULLABLE, 0, err));
  /* list<struct<k: utf8, v: float64>> */
  struct ArrowSchema *ls = c[30];
  TRY(pt_schema_init(ls, "+l", "list_of_struct", NULLABLE, 1, err));
  TRY(pt_schema_init(ls->children[0], "+s", "item", NULLABLE, 2, err));
  TRY(pt_schema_init(ls->children[0]->children[0], "u", "k", NULLABLE, 0, err));
  TRY(pt_schema_init(ls->children[0]->children[1], "g", "v", NULLABLE, 0, err));
  /* dictionary<values=utf8, indices=int32>: the index type is the node's
   * format; the value type is its dictionary. */
  TRY(pt_schema_init(c[31], "i", "color", NULLABLE, 0, err));
  struct ArrowSchema values;
  TRY(pt_schema_init(&values, "u", "", NULLABLE, 0, err));
  int rc = pt_schema_set_dictionary(c[31], &values, err);
  if (rc != PT_OK) {
    values.release(&values);
    return rc;
  }
  /* The types the columnar format gained later. */
  TRY(pt_schema_init(c[32], "tdm", "date64", NULLABLE, 0, err));
  TRY(pt_schema_init(c[33], "ttm", "time32_ms", NULLABLE, 0, err));
  TRY(pt_schema_init(c[34], "ttn", "time64_ns", NULLABLE, 0, err));
  TRY(pt_schema_init(c[35], "tin", "interval_month_day_nano", NULLABLE, 0, err));
  TRY(pt_schema_init(c[36], "d:9,2,32", "decimal32", NULLABLE, 0, err));
  TRY(pt_schema_init(c[37], "d:60,10,256", "decimal256", NULLABLE, 0, err));
  TRY(pt_schema_init(c[38], "vu", "string_view", NULLABLE, 0, err));
  TRY(pt_schema_init(c[39], "vz", "binary_view", NULLABLE, 0, err));
  /* map<utf8, int32>: entries and keys not nullable */
  TRY(pt_schema_init(c[40], "+m", "map", NULLABLE, 1, err));
  TRY(pt_schema_init(c[40]->children[0], "+s", "entries", 0, 2, err));
  TRY(pt_schema_init(c[40]->children[0]->children[0], "u", "key", 0, 0, err));
  TRY(pt_schema_init(c[40]->children[0]->children[1], "i", "value", NULLABLE, 0, err));
  /* dense_union<n: int64 = 0, s: utf8 = 5> */
  TRY(pt_schema_init(c[41], "+ud:0,5", "dense_union", 0, 2, err));
  TRY(pt_schema_init(c[41]->children[0], "l", "n", NULLABLE, 0, err));
  TRY(pt_schema_init(c[41]->children[1], "u", "s", NULLABLE, 0, err));
  TRY(pt_schema_init(c[42], "+vl", "list_view", NULLABLE, 1, err));
  TRY(pt_schema_init(c[42]->children[0], "s", "item", NULLABLE, 0, err));
  /* run_end_encoded<int32, utf8> */
  TRY(pt_schema_init(c[43], "+r", "run_end_encoded", 0, 2, err));
  TRY(pt_schema_init(c[43]->children[0], "i", "run_ends", 0, 0, err));
  TRY(pt_schema_init(c[43]->children[1], "u", "values", NULLABLE, 0, err));
  /* An extension type: its storage, named by field metadata. */
  TRY(pt_schema_init(c[44], "w:16", "uuid", NULLABLE, 0, err));
  const char *ek[] = {"ARROW:extension:name", "ARROW:extension:metadata"};
  const char *ev[] = {"arrow.uuid", ""};
  TRY(pt_schema_set_metadata(c[44], 2, ek, ev, err));
  /* Metadata on a field and on the schema; `protium cat --schema` shows it. */
  const char *fk[] = {"unit"}, *fv[] = {"euro"};
  TRY(pt_schema_set_metadata(c[25], 1, fk, fv, err));
  const char *sk[] = {"source"}, *sv[] = {"examples/every_type.c"};
  TRY(pt_schema_set_metadata(s, 1, sk, sv, err));
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Rows: the value of every column is a function of the row number r. */

static const char *const words[] = {"alpha", "\xce\xb2-beta", "quote\"d", "tab\there",
                                    "\xf0\x9f\x98\x80", ""};
static const char *const colors[] = {"red", "green", "blue", "cyan", "magenta"};

/* Column k of row r is null when this says so (never for column 0). */
static int is_null(int64_t r, int k) { return k != 0 && (r + k) % 5 == 3; }

/* Cycles through the extremes of an integer type and ordinary values. */
static int64_t int_value(int64_t r, int64_t lo, int64_t hi) {
  switch (r % 4) {
    case 0: return lo;
    case 1: return hi;
    default: return r * 7 - 20 < lo ? lo : r * 7 - 20;
  }
}

static int append_str(pt_builder *b, const char *s) {
  return pt_builder_append_bytes(b, s, (int64_t)strlen(s));
}

static int append_value(pt_builder *root, int k, int64_t r) {
  pt_builder *b = pt_builder_child(root, k);
  char text[64];
  if (is_null(r, k) || k == 1) return pt_builder_append_null(b, 1);
  switch (k) {
    case 0: return pt_builder_append_int(b, r);
    case 2: return pt_builder_append_int(b, r % 3 == 0);
    case 3: return pt_builder_append_int(b, int_value(r, INT8_MIN, INT8_MAX));
    case 4: return pt_builder_append_int(b, int_value(r, 0, UINT8_MAX));
    case 5: return pt_builder_append_int(b, int_value(r, INT16_MIN, INT16_MAX));
    case 6: return pt_builder_append_int(b, int_value(r, 0, UINT16_MAX));
    case 7: return pt_builder_append_int(b, int_value(r, INT32_MIN, INT32_MAX));
    case 8: return pt_builder_append_int(b, int_value(r, 0, UINT32_MAX));
    case 9: return pt_builder_append_int(b, int_value(r, INT64_MIN, INT64_MAX));
    case 10:
      return r % 4 == 1 ? pt_builder_append_uint(b, UINT64_MAX) : pt_builder_append_uint(b, r);
    case 11: return pt_builder_append_double(b, r * 0.1);
    case 12: return pt_builder_append_double(b, r == 2 ? NAN : r * 0.1);
    case 13: return pt_builder_append_double(b, r == 5 ? -INFINITY : r / 3.0);
    case 14: return append_str(b, words[r % 6]);
    case 15:
      snprintf(text, sizeof text, "row-%lld", (long long)r);
      return append_str(b, text);
    case 16: return pt_builder_append_bytes(b, "\x00\x01\x02", r % 4); /* base64 of 0-3 bytes */
    case 17: return pt_builder_append_bytes(b, "\xff\xfe\xfd\xfc\xfb", r % 6);
    case 18: {
      unsigned char v[4] = {(unsigned char)r, (unsigned char)(r * 3), 0xAB, 0xCD};
      return pt_builder_append_bytes(b, v, 4);
    }
    case 19: return pt_builder_append_int(b, r == 0 ? -719529 : r * 4000 - 20000);
    case 20: return pt_builder_append_int(b, r * 86400 * 400 - 1000000000);
    case 21: return pt_builder_append_int(b, 1614834367123 + r * 3600123);
    case 22: return pt_builder_append_int(b, -1 - r * 1000001);
    case 23: return pt_builder_append_int(b, r * 1234567891011);
    case 24: return pt_builder_append_int(b, r * 1500 - 3000);
    case 25:
      snprintf(text, sizeof text, "%s%lld.%03lld", r % 2 ? "-" : "", (long long)(r * 97),
               (long long)(r * 13 % 1000));
      return pt_builder_append_decimal_string(b, text);
    case 26: { /* list<int32>: r % 4 items, item 1 null on even rows */
      pt_builder *item = pt_builder_child(b, 0);
      for (int64_t i = 0; i < r % 4; i++)
        TRY(i == 1 && r % 2 == 0 ? pt_builder_append_null(item, 1)
                                 : pt_builder_append_int(item, r * 10 + i));
      return pt_builder_append_row(b);
    }
    case 27: { /* large_list<utf8> */
      pt_builder *item = pt_builder_child(b, 0);
      for (int64_t i = 0; i < r % 3; i++) {
        snprintf(text, sizeof text, "x%lld", (long long)(r + i));
        TRY(append_str(item, text));
      }
      return pt_builder_append_row(b);
    }
    case 28: { /* fixed_size_list<float32>[3] */
      pt_builder *item = pt_builder_child(b, 0);
      for (int64_t i = 0; i < 3; i++) TRY(pt_builder_append_double(item, r + i / 4.0));
      return pt_builder_append_row(b);
    }
    case 29: { /* struct<x, y, inner: struct<ok>> with nulls inside */
      TRY(pt_builder_append_int(pt_builder_child(b, 0), r * r));
      pt_builder *y = pt_builder_child(b, 1), *inner = pt_builder_child(b, 2);
      TRY(r % 3 == 0 ? pt_builder_append_null(y, 1) : append_str(y, words[r % 6]));
      if (r % 4 == 1) {
        TRY(pt_builder_append_null(inner, 1));
      } else {
        TRY(pt_builder_append_int(pt_builder_child(inner, 0), r % 2));
        TRY(pt_builder_append_row(inner));
      }
      return pt_builder_append_row(b);
    }
    case 30: { /* list<struct<k, v>>: null entries and null fields */
      pt_builder *entry = pt_builder_child(b, 0);
      for (int64_t i = 0; i < r % 3 + 1; i++) {
        if ((r + i) % 4 == 0) {
          TRY(pt_builder_append_null(entry, 1));
          continue;
        }
        pt_builder *key = pt_builder_child(entry, 0), *val = pt_builder_child(entry, 1);
        TRY(i == 2 ? pt_builder_append_null(key, 1) : append_str(key, colors[(r + i) % 5]));
        TRY(pt_builder_append_double(val, (r + i) * 1.25));
        TRY(pt_builder_append_row(entry));
      }
      return pt_builder_append_row(b);
    }
    case 32: return pt_builder_append_int(b, (r * 3000 - 20000) * INT64_C(86400000));
    case 33: return pt_builder_append_int(b, r * 3600123 % 86400000);
    case 34: return pt_builder_append_int(b, r * INT64_C(3600000000123) % INT64_C(86400000000000));
    case 35: {
      unsigned char v[16];
      int32_t months = (int32_t)r - 3, days = (int32_t)(r * 7);
      int64_t ns = r * INT64_C(1000000007);
      memcpy(v, &months, 4);
      memcpy(v + 4, &days, 4);
      memcpy(v + 8, &ns, 8);
      return pt_builder_append_bytes(b, v, 16);
    }
    case 36:
      snprintf(text, sizeof text, "%lld.%02lld", (long long)(r * 37 - 100), (long long)(r % 100));
      return pt_builder_append_decimal_string(b, text);
    case 37:
      snprintf(text, sizeof text, "-12345678901234567890123456789012345678901234567%lld.5",
               (long long)r);
      return pt_builder_append_decimal_string(b, text);
    case 38: /* inline (up to 12 bytes) and out-of-line views */
      return append_str(b, r % 2 ? words[r % 6] : "a string longer than twelve bytes");
    case 39: { /* 0-14 bytes: inline views, and out of line beyond 12 */
      static const unsigned char bytes[14] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13};
      return pt_builder_append_bytes(b, bytes, r % 15);
    }
    case 40: { /* map<utf8, int32>: r % 3 entries, some values null */
      pt_builder *entries = pt_builder_child(b, 0);
      for (int64_t i = 0; i < r % 3; i++) {
        TRY(append_str(pt_builder_child(entries, 0), colors[(r + i) % 5]));
        pt_builder *val = pt_builder_child(entries, 1);
        TRY(i == 1 ? pt_builder_append_null(val, 1) : pt_builder_append_int(val, r * 100 + i));
        TRY(pt_builder_append_row(entries));
      }
      return pt_builder_append_row(b);
    }
    case 41: /* dense union: a number or a word */
      if (r % 2 == 0) {
        TRY(pt_builder_append_int(pt_builder_child(b, 0), r * 11));
        return pt_builder_append_union(b, 0);
      }
      TRY(append_str(pt_builder_child(b, 1), words[r % 6]));
      return pt_builder_append_union(b, 5);
    case 42: { /* list_view<int16> */
      pt_builder *item = pt_builder_child(b, 0);
      for (int64_t i = 0; i < r % 4; i++) TRY(pt_builder_append_int(item, r * 4 + i));
      return pt_builder_append_row(b);
    }
    case 43: /* run-end encoded: a run per row here, every third value null */
      TRY(r % 3 == 2 ? pt_builder_append_null(pt_builder_child(b, 1), 1)
                     : append_str(pt_builder_child(b, 1), colors[r % 5]));
      return pt_builder_append_run(b, 1);
    case 44: {
      unsigned char v[16];
      for (int i = 0; i < 16; i++) v[i] = (unsigned char)(r * 16 + i);
      return pt_builder_append_bytes(b, v, 16);
    }
    default: return PT_EINVAL;
  }
}

/* The dictionary column: batch n has the first 3 + n colors (each batch's
 * dictionary extends the previous one, so the writer emits deltas). */
static int append_color(pt_builder *root, int64_t r, int n_colors) {
  pt_builder *b = pt_builder_child(root, 31);
  if (is_null(r, 31)) return pt_builder_append_null(b, 1);
  return pt_builder_append_int(b, r % n_colors);
}

static int build_batch(pt_builder *root, int64_t first_row, int64_t rows, int n_colors,
                       struct ArrowArray *out, pt_error *err) {
  pt_builder *dict = pt_builder_dictionary(pt_builder_child(root, 31));
  for (int i = 0; i < n_colors; i++) {
    if (append_str(dict, colors[i]) != PT_OK) goto append_failed;
  }
  for (int64_t r = first_row; r < first_row + rows; r++) {
    for (int k = 0; k < 31; k++)
      if (append_value(root, k, r) != PT_OK) goto append_failed;
    if (append_color(root, r, n_colors) != PT_OK) goto append_failed;
    for (int k = 32; k < N_COLUMNS; k++)
      if (append_value(root, k, r) != PT_OK) goto append_failed;
    if (pt_builder_append_row(root) != PT_OK) goto append_failed;
  }
  return pt_builder_finish(root, out, err);

append_failed:
  snprintf(err->message, sizeof err->message, "append: %s", pt_builder_last_error(root));
  return err->code = PT_EINVAL;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: every_type FILE\n");
    return 2;
  }
  pt_error err = {0};
  struct ArrowSchema schema = {0};
  pt_builder *b = NULL;
  pt_ipc_writer *w = NULL;
  int status = 1;

  if (make_schema(&schema, &err) != PT_OK) goto report;
  if (pt_builder_new(&schema, &b, &err) != PT_OK) goto report;
  pt_ipc_write_options opts;
  pt_ipc_write_options_init(&opts);
  opts.format = PT_IPC_FILE;
  if (pt_ipc_writer_open_path(argv[1], &schema, &opts, &w, &err) != PT_OK) goto report;

  static const int64_t batch_rows[] = {5, 4, 3};
  int64_t row = 0;
  for (int n = 0; n < 3; n++) {
    struct ArrowArray batch;
    if (build_batch(b, row, batch_rows[n], 3 + n, &batch, &err) != PT_OK) goto report;
    int rc = pt_ipc_writer_write(w, &batch, &err);
    batch.release(&batch);
    if (rc != PT_OK) goto report;
    row += batch_rows[n];
  }
  if (pt_ipc_writer_close(w, &err) != PT_OK) goto report;
  printf("every_type: wrote %lld rows of %d columns in 3 record batches to %s\n",
         (long long)row, N_COLUMNS, argv[1]);
  status = 0;
  goto cleanup;

report:
  fprintf(stderr, "every_type: %s\n", err.message);
cleanup:
  pt_ipc_writer_free(w);
  pt_builder_free(b);
  if (schema.release) schema.release(&schema);
  return status;
}
