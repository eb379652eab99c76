/* cat.c — `protium cat`: an Arrow IPC stream or file (or standard input) to
 * JSON lines on standard output (rules: src/io/README.md), or its schema with
 * --schema. Output goes through one growing buffer flushed in large writes; a
 * reader that goes away (`| head`) ends the command quietly with status 0.
 *
 * --schema prints one line per column, then metadata if there is any:
 *
 *   id: int64 not null                 name: type (pt_type_name), " not null"
 *   price: decimal128(12, 3)             when the field is not nullable
 *     -- field metadata --             the field's key/value pairs, indented
 *     unit: euro
 *   -- schema metadata --              the schema's own pairs, last
 *   source: example
 *
 * Control characters in names, keys and values print as \n, \t or \xNN so
 * that each stays on one line; bytes that are not UTF-8 text print as \xNN
 * too, and a backslash as \\.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"
#include "protium.h"

/* Flush the JSON buffer to stdout once it holds this much. */
#define FLUSH_BYTES (1u << 20)
/* Rows converted per pt_json_write_batch call. */
#define CHUNK_ROWS 65536

typedef struct cat_args {
  const char *path;
  int schema_only;
  int64_t limit; /* -1: no limit */
} cat_args;

static void cat_usage(const char *why) {
  fprintf(stderr, "protium: cat: %s\nusage: protium cat FILE [--schema] [--limit N]\n", why);
}

static int parse_limit(const char *text, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < 0) return -1;
  *out = v;
  return 0;
}

static int parse_args(int argc, char **argv, cat_args *a) {
  a->path = NULL;
  a->schema_only = 0;
  a->limit = -1;
  int options_done = 0;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (!options_done && strcmp(arg, "--") == 0) {
      options_done = 1;
    } else if (!options_done && strcmp(arg, "--schema") == 0) {
      a->schema_only = 1;
    } else if (!options_done &&
               (strcmp(arg, "--limit") == 0 || strncmp(arg, "--limit=", 8) == 0)) {
      const char *value = arg[7] == '=' ? arg + 8 : (i + 1 < argc ? argv[++i] : NULL);
      if (value == NULL) {
        cat_usage("--limit needs a number");
        return -1;
      }
      if (parse_limit(value, &a->limit) != 0) {
        char why[256];
        snprintf(why, sizeof why, "--limit: '%s' is not a row count (a whole number >= 0)",
                 value);
        cat_usage(why);
        return -1;
      }
    } else if (!options_done && arg[0] == '-' && arg[1] != '\0') {
      char why[256];
      snprintf(why, sizeof why, "unknown option '%s'", arg);
      cat_usage(why);
      return -1;
    } else if (a->path == NULL) {
      a->path = arg;
    } else {
      cat_usage("takes one FILE");
      return -1;
    }
  }
  if (a->path == NULL) {
    cat_usage("missing FILE");
    return -1;
  }
  return 0;
}

/* Bytes of the UTF-8 sequence at s (n bytes left) when it is a valid one,
 * else 0. */
static size_t utf8_sequence(const unsigned char *s, size_t n) {
  size_t len = s[0] < 0x80 ? 1 : s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC0 ? 2 : 0;
  return len != 0 && len <= n && pt__utf8_valid(s, len) ? len : 0;
}

/* Appends text with control characters escaped (\n, \t, \xNN), so that every
 * field stays on one line, and so are bytes that are not UTF-8 text
 * (metadata is bytes) and the backslash itself (\\), so that the output is
 * text and reads back unambiguously. */
static int append_printable(pt_buf *b, const char *text, size_t n) {
  const unsigned char *s = (const unsigned char *)text;
  for (size_t i = 0; i < n;) {
    unsigned char c = s[i];
    size_t len = utf8_sequence(s + i, n - i);
    int rc;
    if (c == '\n') rc = pt__buf_append(b, "\\n", 2);
    else if (c == '\t') rc = pt__buf_append(b, "\\t", 2);
    else if (c == '\\') rc = pt__buf_append(b, "\\\\", 2);
    else if (c < 0x20 || c == 0x7f || len == 0) rc = pt__buf_printf(b, "\\x%02x", c);
    else rc = pt__buf_append(b, (const char *)s + i, len);
    if (rc != PT_OK) return rc;
    i += len ? len : 1;
  }
  return PT_OK;
}

/* Appends the key/value pairs of C Data Interface metadata (int32 count, then
 * int32 length + bytes for each key and value), one "INDENTkey: value" line
 * each. */
static int append_metadata(pt_buf *b, const char *metadata, const char *indent) {
  const char *p = metadata;
  int32_t n = pt__load_i32(p);
  p += 4;
  for (int32_t k = 0; k < n; k++) {
    int32_t klen = pt__load_i32(p);
    const char *key = p + 4;
    if (klen < 0) return PT_EFORMAT;
    p = key + klen;
    int32_t vlen = pt__load_i32(p);
    const char *value = p + 4;
    if (vlen < 0) return PT_EFORMAT;
    p = value + vlen;
    PT_RETURN_NOT_OK(pt__buf_append(b, indent, strlen(indent)));
    PT_RETURN_NOT_OK(append_printable(b, key, (size_t)klen));
    PT_RETURN_NOT_OK(pt__buf_append(b, ": ", 2));
    PT_RETURN_NOT_OK(append_printable(b, value, (size_t)vlen));
    PT_RETURN_NOT_OK(pt__buf_putc(b, '\n'));
  }
  return PT_OK;
}

static int has_metadata(const char *metadata) {
  return metadata != NULL && pt__load_i32(metadata) > 0;
}

/* One line per column, "name: type" (+ " not null"), then the field's
 * metadata indented under "  -- field metadata --", and the schema's own
 * metadata at the end under "-- schema metadata --". */
static int append_schema(pt_buf *b, const struct ArrowSchema *schema) {
  char small[256];
  for (int64_t k = 0; k < schema->n_children; k++) {
    const struct ArrowSchema *f = schema->children[k];
    const char *name = f->name ? f->name : "";
    PT_RETURN_NOT_OK(append_printable(b, name, strlen(name)));
    PT_RETURN_NOT_OK(pt__buf_append(b, ": ", 2));
    int n = pt_type_name(f, small, sizeof small);
    if (n < 0) return PT_EFORMAT;
    if ((size_t)n < sizeof small) {
      PT_RETURN_NOT_OK(pt__buf_append(b, small, (size_t)n));
    } else { /* a long nested type: format straight into the buffer */
      PT_RETURN_NOT_OK(pt__buf_reserve(b, (size_t)n + 1));
      pt_type_name(f, b->data + b->len, (size_t)n + 1);
      b->len += (size_t)n;
    }
    if (!(f->flags & ARROW_FLAG_NULLABLE)) PT_RETURN_NOT_OK(pt__buf_append(b, " not null", 9));
    PT_RETURN_NOT_OK(pt__buf_putc(b, '\n'));
    if (has_metadata(f->metadata)) {
      PT_RETURN_NOT_OK(pt__buf_printf(b, "  -- field metadata --\n"));
      PT_RETURN_NOT_OK(append_metadata(b, f->metadata, "  "));
    }
  }
  if (has_metadata(schema->metadata)) {
    PT_RETURN_NOT_OK(pt__buf_printf(b, "-- schema metadata --\n"));
    PT_RETURN_NOT_OK(append_metadata(b, schema->metadata, ""));
  }
  return PT_OK;
}

static void report(const char *path, const char *what) {
  fprintf(stderr, "protium: cat: %s: %s\n", path,
          what != NULL && what[0] != '\0' ? what : "unknown error");
}

/* The stream's message for a failed call, never NULL. */
static const char *stream_error(struct ArrowArrayStream *stream) {
  const char *m = stream->get_last_error(stream);
  return m != NULL && m[0] != '\0' ? m : "reading failed";
}

/* Writes out's contents to stdout and empties it. Returns 0 to go on, or 1
 * to stop: either the reader has gone away (a quiet success, *what stays
 * NULL) or the write failed (*what says why). */
static int flush(pt_buf *out, const char **what) {
  int rc = pt__cli_write_stdout(out->data, out->len);
  out->len = 0;
  if (rc == 0) return 0;
  if (rc > 0) *what = strerror(rc);
  return 1;
}

/* Prints the rows of one batch, a slice of at most CHUNK_ROWS rows at a time
 * (zero-copy), so that the text in memory stays bounded whatever the batch
 * size. Returns 0 to go on, 1 to stop (see flush). */
static int print_batch(const struct ArrowSchema *schema, struct ArrowArray *batch,
                       int64_t *rows_left, pt_buf *out, pt_error *err, const char **what) {
  for (int64_t start = 0; start < batch->length && *rows_left != 0;) {
    int64_t n = batch->length - start;
    if (n > CHUNK_ROWS) n = CHUNK_ROWS;
    if (*rows_left >= 0 && n > *rows_left) n = *rows_left;
    struct ArrowArray slice = {0};
    const struct ArrowArray *rows = batch;
    if (n != batch->length) {
      if (pt_array_slice(batch, start, n, &slice, err) != PT_OK) {
        *what = err->message;
        return 1;
      }
      rows = &slice;
    }
    int rc = pt_json_write_batch(schema, rows, out, err);
    if (slice.release) slice.release(&slice);
    if (rc != PT_OK) {
      *what = err->message;
      return 1;
    }
    start += n;
    if (*rows_left >= 0) *rows_left -= n;
    if (out->len >= FLUSH_BYTES && flush(out, what)) return 1;
  }
  return 0;
}

int pt__cli_cat(int argc, char **argv) {
  cat_args a;
  if (parse_args(argc, argv, &a) != 0) return CLI_USAGE;

  pt_error err = {0};
  struct ArrowArrayStream stream;
  struct ArrowSchema schema = {0};
  struct ArrowArray batch = {0};
  pt_buf out = {0};
  const char *what = NULL; /* set on failure: the message */
  int64_t rows_left = a.limit;
  const int from_stdin = strcmp(a.path, "-") == 0;

  if (pt__cli_open_table(a.path, &stream, &err) != PT_OK) {
    report(a.path, err.message);
    return CLI_FAILED;
  }
  if (stream.get_schema(&stream, &schema) != 0) {
    what = stream_error(&stream);
    goto release_stream;
  }

  if (a.schema_only) {
    if (append_schema(&out, &schema) != PT_OK)
      what = "cannot print the schema (out of memory or malformed metadata)";
    else
      flush(&out, &what);
    goto release_schema;
  }

  for (int64_t batch_no = 0; rows_left != 0; batch_no++) {
    if (stream.get_next(&stream, &batch) != 0) {
      what = stream_error(&stream);
      break;
    }
    if (batch.release == NULL) break; /* end of stream */
    int stop = print_batch(&schema, &batch, &rows_left, &out, &err, &what);
    batch.release(&batch);
    if (stop) {
      if (what == err.message)
        pt__error_prefix(&err, err.code, "record batch %lld: ", (long long)batch_no);
      break;
    }
    /* Rows from a pipe may trickle in: pass each batch on as it comes. */
    if (from_stdin && out.len > 0 && flush(&out, &what)) break;
  }
  /* What is left, including the rows printed before a failure (ahead of
   * its message). */
  if (out.len > 0) {
    const char *write_failure = NULL;
    flush(&out, &write_failure);
    if (what == NULL) what = write_failure;
  }

release_schema:
  schema.release(&schema);
release_stream:
  /* The stream's message is only valid until it is released. */
  if (what != NULL) report(a.path, what);
  stream.release(&stream);
  pt_buf_free(&out);
  return what == NULL ? CLI_OK : CLI_FAILED;
}
