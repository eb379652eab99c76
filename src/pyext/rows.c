/* rows.c — the row loop of map_rows (python/protium/_worker.py), in C over
 * the CPython API: each row's dict is filled from the batch's buffers, the
 * user's function is called, and its values go straight into typed output
 * buffers. Built as libprotium_rows.so, loaded with ctypes.PyDLL (the GIL
 * stays held); libprotium itself never depends on Python. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

/* Input column kinds (a tuple (kind, data, validity, offset) describes
 * the Arrow buffers of a column; a list holds its Python values). */
enum { IN_I8 = 1, IN_I16, IN_I32, IN_I64, IN_U8, IN_U16, IN_U32, IN_U64, IN_F32, IN_F64, IN_BOOL };
/* Output column kinds: a tuple (kind, data, mask) names the buffers the
 * values are written to (mask: one byte per row, 1 = null); None: the
 * values are gathered in a list for pyarrow to convert. */
enum { OUT_I8 = 1, OUT_I16, OUT_I32, OUT_I64, OUT_U8, OUT_U16, OUT_U32, OUT_U64, OUT_F64, OUT_BOOL };

typedef struct {
  int kind; /* 0: list */
  PyObject *list;
  const uint8_t *data;
  const uint8_t *validity; /* NULL: no nulls */
  int64_t offset;          /* of the array, in values (bits for bool) */
} in_col;

typedef struct {
  int kind;       /* 0: list mode (from the start, or since a value that did not fit) */
  PyObject *list; /* all the chunk's values so far, in list mode */
  uint8_t *data;
  uint8_t *mask;
} out_col;

static int bit(const uint8_t *bits, int64_t i) { return (bits[i >> 3] >> (i & 7)) & 1; }

/* Rows reuse their dict and, where nothing else holds them, the int and
 * float objects in it: a value object that only the row dict references
 * gets the next row's value written into it, which no Python code can
 * tell from a new object (nothing else can see it), and saves a dict
 * store, an allocation and a free per value. That needs the layout of
 * ints and floats and a dict version that any change to the dict bumps:
 * CPython 3.11 to 3.13 with the GIL. Elsewhere every value is stored
 * anew, as before. */
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030E0000 && !defined(Py_GIL_DISABLED)
#define ROWS_IN_PLACE 1
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
/* ma_version_tag: deprecated from 3.12 for dict watchers, still bumped on
 * every change to the dict up to 3.13 */
static uint64_t dict_version(PyObject *d) { return ((PyDictObject *)d)->ma_version_tag; }
#pragma GCC diagnostic pop

/* Writes magnitude u with sign neg into int o, which has room for any
 * 64-bit magnitude (made by wide_int). */
static void long_set(PyObject *o, unsigned long long u, int neg) {
  PyLongObject *l = (PyLongObject *)o;
#if PY_VERSION_HEX >= 0x030C0000
  digit *d = l->long_value.ob_digit;
#else
  digit *d = l->ob_digit;
#endif
  Py_ssize_t nd = 0;
  while (u) {
    d[nd++] = (digit)(u & PyLong_MASK);
    u >>= PyLong_SHIFT;
  }
#if PY_VERSION_HEX >= 0x030C0000
  /* number of digits above the sign bits: 0 positive, 1 zero, 2 negative */
  l->long_value.lv_tag = ((uintptr_t)nd << _PyLong_NON_SIZE_BITS) | (neg ? 2u : nd ? 0u : 1u);
#else
  Py_SET_SIZE(l, neg ? -nd : nd);
#endif
}
#else
#define ROWS_IN_PLACE 0
#endif

/* The integers CPython keeps one object of ([-5, 256]): those stay the
 * shared objects, never a row's own. */
static int small_int(unsigned long long u, int neg) { return neg ? u <= 5 : u <= 256; }

/* A new int of value (u, neg) that long_set may later rewrite with any
 * 64-bit value (new reference). */
static PyObject *wide_int(unsigned long long u, int neg) {
#if ROWS_IN_PLACE
  if (!small_int(u, neg)) {
    PyObject *o = PyLong_FromUnsignedLongLong(ULLONG_MAX); /* the most digits */
    if (o) long_set(o, u, neg);
    return o;
  }
#endif
  return neg ? PyLong_FromLongLong((long long)(0 - u)) : PyLong_FromUnsignedLongLong(u);
}

/* Row j (offset included) of an integer column as magnitude and sign. */
static void in_int(const in_col *c, int64_t j, unsigned long long *u, int *neg) {
  long long x = 0;
  switch (c->kind) {
  case IN_I8: x = ((const int8_t *)c->data)[j]; break;
  case IN_I16: x = ((const int16_t *)c->data)[j]; break;
  case IN_I32: x = ((const int32_t *)c->data)[j]; break;
  case IN_I64: x = ((const int64_t *)c->data)[j]; break;
  case IN_U8: x = ((const uint8_t *)c->data)[j]; break;
  case IN_U16: x = ((const uint16_t *)c->data)[j]; break;
  case IN_U32: x = ((const uint32_t *)c->data)[j]; break;
  case IN_U64:
    *u = ((const uint64_t *)c->data)[j];
    *neg = 0;
    return;
  }
  *neg = x < 0;
  *u = x < 0 ? 0 - (unsigned long long)x : (unsigned long long)x;
}

/* The Python value of row i of column c (a new reference), as pyarrow's
 * to_pylist gives it. */
static PyObject *in_value(const in_col *c, int64_t i) {
  if (c->kind == 0) {
    PyObject *v = PyList_GET_ITEM(c->list, i);
    Py_INCREF(v);
    return v;
  }
  int64_t j = c->offset + i;
  if (c->validity && !bit(c->validity, j)) Py_RETURN_NONE;
  switch (c->kind) {
  case IN_F32: return PyFloat_FromDouble(((const float *)c->data)[j]);
  case IN_F64: return PyFloat_FromDouble(((const double *)c->data)[j]);
  case IN_BOOL: return PyBool_FromLong(bit(c->data, j));
  }
  if (c->kind < IN_I8 || c->kind > IN_U64) {
    PyErr_SetString(PyExc_SystemError, "protium rows: unknown input kind");
    return NULL;
  }
  unsigned long long u;
  int neg;
  in_int(c, j, &u, &neg);
  return wide_int(u, neg);
}

/* Writes row i of column c into old, the value the row dict holds for it,
 * where only the dict holds old and it is an object of this loop's that
 * can take the value (see ROWS_IN_PLACE): 1 when done, 0 when the value
 * must be stored anew. */
static int in_refresh(const in_col *c, int64_t i, PyObject *old) {
#if ROWS_IN_PLACE
  if (c->kind == 0 || c->kind == IN_BOOL || Py_REFCNT(old) != 1) return 0;
  int64_t j = c->offset + i;
  if (c->validity && !bit(c->validity, j)) return 0;
  if (c->kind == IN_F32 || c->kind == IN_F64) {
    if (!PyFloat_CheckExact(old)) return 0;
    ((PyFloatObject *)old)->ob_fval =
        c->kind == IN_F32 ? ((const float *)c->data)[j] : ((const double *)c->data)[j];
    return 1;
  }
  if (!PyLong_CheckExact(old)) return 0;
  unsigned long long u;
  int neg;
  in_int(c, j, &u, &neg);
  if (small_int(u, neg)) return 0;
  long_set(old, u, neg);
  return 1;
#else
  (void)c;
  (void)i;
  (void)old;
  return 0;
#endif
}

static Py_ssize_t out_width(int kind) {
  switch (kind) {
  case OUT_I16: case OUT_U16: return 2;
  case OUT_I32: case OUT_U32: return 4;
  case OUT_I64: case OUT_U64: case OUT_F64: return 8;
  }
  return 1;
}

/* Writes v into row i of a typed output column; 0 when it does not fit
 * exactly (anything but None and a value of the very Python type, or out
 * of range): pyarrow then converts the column, with its own rules and
 * errors. */
static int out_store(out_col *c, Py_ssize_t i, PyObject *v) {
  if (v == Py_None) { /* the bytes under a null are zeros, not stale memory */
    c->mask[i] = 1;
    memset(c->data + i * out_width(c->kind), 0, (size_t)out_width(c->kind));
    return 1;
  }
  c->mask[i] = 0;
  if (c->kind == OUT_F64) {
    if (!PyFloat_CheckExact(v)) return 0;
    ((double *)c->data)[i] = PyFloat_AS_DOUBLE(v);
    return 1;
  }
  if (c->kind == OUT_BOOL) {
    if (v != Py_True && v != Py_False) return 0;
    c->data[i] = v == Py_True;
    return 1;
  }
  if (!PyLong_CheckExact(v)) return 0;
  if (c->kind == OUT_U64) {
    unsigned long long u = PyLong_AsUnsignedLongLong(v);
    if (u == (unsigned long long)-1 && PyErr_Occurred()) {
      PyErr_Clear();
      return 0;
    }
    ((uint64_t *)c->data)[i] = u;
    return 1;
  }
  int overflow = 0;
  long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
  if (overflow) return 0;
  switch (c->kind) {
  case OUT_I8:
    if (x < INT8_MIN || x > INT8_MAX) return 0;
    ((int8_t *)c->data)[i] = (int8_t)x;
    return 1;
  case OUT_I16:
    if (x < INT16_MIN || x > INT16_MAX) return 0;
    ((int16_t *)c->data)[i] = (int16_t)x;
    return 1;
  case OUT_I32:
    if (x < INT32_MIN || x > INT32_MAX) return 0;
    ((int32_t *)c->data)[i] = (int32_t)x;
    return 1;
  case OUT_I64: ((int64_t *)c->data)[i] = x; return 1;
  case OUT_U8:
    if (x < 0 || x > UINT8_MAX) return 0;
    c->data[i] = (uint8_t)x;
    return 1;
  case OUT_U16:
    if (x < 0 || x > UINT16_MAX) return 0;
    ((uint16_t *)c->data)[i] = (uint16_t)x;
    return 1;
  case OUT_U32:
    if (x < 0 || x > (long long)UINT32_MAX) return 0;
    ((uint32_t *)c->data)[i] = (uint32_t)x;
    return 1;
  }
  return 0;
}

/* The value out_store wrote at row i, again as a Python object. */
static PyObject *out_load(const out_col *c, Py_ssize_t i) {
  if (c->mask[i]) Py_RETURN_NONE;
  switch (c->kind) {
  case OUT_I8: return PyLong_FromLong(((const int8_t *)c->data)[i]);
  case OUT_I16: return PyLong_FromLong(((const int16_t *)c->data)[i]);
  case OUT_I32: return PyLong_FromLong(((const int32_t *)c->data)[i]);
  case OUT_I64: return PyLong_FromLongLong(((const int64_t *)c->data)[i]);
  case OUT_U8: return PyLong_FromUnsignedLong(c->data[i]);
  case OUT_U16: return PyLong_FromUnsignedLong(((const uint16_t *)c->data)[i]);
  case OUT_U32: return PyLong_FromUnsignedLong(((const uint32_t *)c->data)[i]);
  case OUT_U64: return PyLong_FromUnsignedLongLong(((const uint64_t *)c->data)[i]);
  case OUT_F64: return PyFloat_FromDouble(((const double *)c->data)[i]);
  case OUT_BOOL: return PyBool_FromLong(c->data[i]);
  }
  PyErr_SetString(PyExc_SystemError, "protium rows: unknown output kind");
  return NULL;
}

/* A typed column that met a value it cannot hold becomes a list of its
 * first `done` values (from its buffers), then takes the rest as they come. */
static int out_to_list(out_col *c, Py_ssize_t n, Py_ssize_t done) {
  PyObject *list = PyList_New(n);
  if (!list) return -1;
  for (Py_ssize_t i = 0; i < done; i++) {
    PyObject *v = out_load(c, i);
    if (!v) {
      Py_DECREF(list);
      return -1;
    }
    PyList_SET_ITEM(list, i, v);
  }
  c->list = list;
  c->kind = 0;
  return 0;
}

static int parse_inputs(PyObject *inputs, Py_ssize_t n, in_col *cols) {
  for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(inputs); k++) {
    PyObject *spec = PyTuple_GET_ITEM(inputs, k);
    in_col *c = &cols[k];
    memset(c, 0, sizeof *c);
    if (PyList_CheckExact(spec)) {
      if (PyList_GET_SIZE(spec) < n) {
        PyErr_SetString(PyExc_ValueError, "protium rows: input list shorter than the chunk");
        return -1;
      }
      c->list = spec;
      continue;
    }
    unsigned long long data = 0, validity = 0;
    long long offset = 0;
    if (!PyArg_ParseTuple(spec, "iKKL", &c->kind, &data, &validity, &offset)) return -1;
    if (c->kind < IN_I8 || c->kind > IN_BOOL || !data) {
      PyErr_SetString(PyExc_ValueError, "protium rows: bad input column");
      return -1;
    }
    c->data = (const uint8_t *)(uintptr_t)data;
    c->validity = (const uint8_t *)(uintptr_t)validity;
    c->offset = offset;
  }
  return 0;
}

static int parse_outputs(PyObject *outputs, Py_ssize_t n, out_col *cols) {
  for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(outputs); j++) {
    PyObject *spec = PyTuple_GET_ITEM(outputs, j);
    out_col *c = &cols[j];
    memset(c, 0, sizeof *c);
    if (spec == Py_None) {
      c->list = PyList_New(n);
      if (!c->list) return -1;
      continue;
    }
    unsigned long long data = 0, mask = 0;
    if (!PyArg_ParseTuple(spec, "iKK", &c->kind, &data, &mask)) return -1;
    if (c->kind < OUT_I8 || c->kind > OUT_BOOL || !data || !mask) {
      PyErr_SetString(PyExc_ValueError, "protium rows: bad output column");
      return -1;
    }
    c->data = (uint8_t *)(uintptr_t)data;
    c->mask = (uint8_t *)(uintptr_t)mask;
  }
  return 0;
}

/* Raises not_a_row(r, the current exception) when that exception is one
 * the Python loop treats as "this is not a row" (TypeError, KeyError,
 * IndexError); others stay as they are. */
static void raise_not_a_row(PyObject *not_a_row, PyObject *r) {
  if (!PyErr_ExceptionMatches(PyExc_TypeError) && !PyErr_ExceptionMatches(PyExc_KeyError) &&
      !PyErr_ExceptionMatches(PyExc_IndexError))
    return;
#if PY_VERSION_HEX >= 0x030C0000 /* PyErr_Fetch is deprecated there */
  PyObject *value = PyErr_GetRaisedException();
#else
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  Py_XDECREF(type);
  Py_XDECREF(tb);
#endif
  PyObject *exc = PyObject_CallFunctionObjArgs(not_a_row, r, value ? value : Py_None, NULL);
  Py_XDECREF(value);
  if (exc) {
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
  }
}

/* Output value j of result r (a new reference): by name from a dict (or
 * any mapping), by position from a tuple or list of one value per output
 * column. */
static PyObject *out_value(PyObject *r, PyObject *names, Py_ssize_t j) {
  PyObject *name = PyTuple_GET_ITEM(names, j);
  if (PyDict_CheckExact(r)) {
    PyObject *v = PyDict_GetItemWithError(r, name);
    if (v) {
      Py_INCREF(v);
      return v;
    }
    if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, name);
    return NULL;
  }
  if (PyTuple_CheckExact(r) || PyList_CheckExact(r)) {
    Py_ssize_t size = PySequence_Fast_GET_SIZE(r), want = PyTuple_GET_SIZE(names);
    if (size != want) {
      PyErr_Format(PyExc_IndexError, "a %s of %zd values for %zd columns",
                   Py_TYPE(r)->tp_name, size, want);
      return NULL;
    }
    PyObject *v = PySequence_Fast_GET_ITEM(r, j);
    Py_INCREF(v);
    return v;
  }
  return PyObject_GetItem(r, name);
}

/* Whether dict d has exactly the keys names, in that order (the very
 * objects this loop put in): then refilling it makes the dict a new one
 * would be. */
static int same_keys(PyObject *d, PyObject *names) {
  if (PyDict_GET_SIZE(d) != PyTuple_GET_SIZE(names)) return 0;
  Py_ssize_t pos = 0, k = 0;
  PyObject *key, *value;
  while (PyDict_Next(d, &pos, &key, &value))
    if (key != PyTuple_GET_ITEM(names, k++)) return 0;
  return 1;
}

/* The values of a dict result whose keys are the output names, in order
 * (the very objects: the literals of the function's code and the loop's
 * names are interned), read in one walk over the dict instead of a lookup
 * per name; into got[0..nout), borrowed. 0 when r is not such a dict. */
static int out_walk(PyObject *r, PyObject *names, PyObject **got) {
  Py_ssize_t nout = PyTuple_GET_SIZE(names);
  if (!PyDict_CheckExact(r) || PyDict_GET_SIZE(r) != nout) return 0;
  Py_ssize_t pos = 0;
  PyObject *key;
  for (Py_ssize_t j = 0; j < nout; j++)
    if (!PyDict_Next(r, &pos, &key, &got[j]) || key != PyTuple_GET_ITEM(names, j)) return 0;
  return 1;
}

/* Fills the row dict with row i: a new dict (fresh) gets every value;
 * the dict of the row before, unchanged since (vals[k] the values it
 * holds, own[k] whether this loop made that object and nothing else took
 * it), gets each value written into the object it holds where in_refresh
 * can, else stored anew. */
static int fill_row(PyObject *row, int fresh, const in_col *ins, PyObject *names,
                    PyObject **vals, char *own, int64_t i) {
  for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(names); k++) {
    if (!fresh && own[k] && in_refresh(&ins[k], i, vals[k])) continue;
    PyObject *v = in_value(&ins[k], i);
    if (!v) return -1;
    if (!fresh && v == vals[k]) { /* None, True, False, a small int, as before */
      Py_DECREF(v);
      continue;
    }
    own[k] = Py_REFCNT(v) == 1; /* made here, not a shared object or a list's */
    int rc = PyDict_SetItem(row, PyTuple_GET_ITEM(names, k), v);
    Py_DECREF(v);
    if (rc < 0) return -1;
    vals[k] = v; /* the dict's reference */
  }
  return 0;
}

/* Runs fn over rows [0, n) of the chunk. names: tuple of the input column
 * names; inputs: tuple of one spec per input column (see in_col); outs:
 * tuple of the output column names; outputs: tuple of one spec per output
 * column (see out_col), whose typed buffers hold n values from the given
 * addresses; not_a_row: the exception class raised, as not_a_row(result,
 * error), for a result that gives no value for a column.
 * Returns a new tuple of one entry per output column: None where every
 * value went into its typed buffers, else the list of the n values; NULL
 * with the exception set on failure (what fn raised passes through).
 *
 * Each row's dict is the one of the row before, its values replaced,
 * when nothing but this loop holds it after the call and the function
 * left it as it was (its version unchanged; where there is no version, its
 * keys as the loop left them), else a new one. The function cannot tell
 * the difference, and a dict per row was a third of the loop. */
PyObject *pt_rows_run(PyObject *fn, PyObject *names, PyObject *inputs, PyObject *outs,
                      PyObject *outputs, PyObject *not_a_row, Py_ssize_t n) {
  if (!PyTuple_Check(names) || !PyTuple_Check(inputs) || !PyTuple_Check(outs) ||
      !PyTuple_Check(outputs) || PyTuple_GET_SIZE(names) != PyTuple_GET_SIZE(inputs) ||
      PyTuple_GET_SIZE(outs) != PyTuple_GET_SIZE(outputs) || n < 0) {
    PyErr_SetString(PyExc_TypeError, "protium rows: bad arguments");
    return NULL;
  }
  Py_ssize_t nin = PyTuple_GET_SIZE(names), nout = PyTuple_GET_SIZE(outs);
  in_col *ins = PyMem_Calloc((size_t)nin + 1, sizeof *ins);
  out_col *ocs = PyMem_Calloc((size_t)nout + 1, sizeof *ocs);
  PyObject **vals = PyMem_Calloc((size_t)nin + 1, sizeof *vals); /* borrowed from row */
  char *own = PyMem_Calloc((size_t)nin + 1, 1);
  PyObject **got = PyMem_Calloc((size_t)nout + 1, sizeof *got); /* borrowed from r */
  PyObject *row = NULL, *result = NULL;
  int fresh = 1; /* row is new: vals and own say nothing */
  if (!ins || !ocs || !vals || !own || !got) {
    PyErr_NoMemory();
    goto free_cols;
  }
  if (parse_inputs(inputs, n, ins) < 0 || parse_outputs(outputs, n, ocs) < 0) goto free_lists;
  vectorcallfunc call = PyVectorcall_Function(fn);
  for (Py_ssize_t i = 0; i < n; i++) {
    if (!row) {
      if (!(row = PyDict_New())) goto free_lists;
      fresh = 1;
    }
    if (fill_row(row, fresh, ins, names, vals, own, i) < 0) goto free_lists;
#if ROWS_IN_PLACE
    uint64_t version = dict_version(row);
#endif
    /* args[-1] is ours to use (PY_VECTORCALL_ARGUMENTS_OFFSET) */
    PyObject *args[2] = {NULL, row};
    PyObject *r = call ? call(fn, args + 1, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL)
                       : PyObject_CallOneArg(fn, row);
    if (!r) {
      if (!PyErr_Occurred())
        PyErr_SetString(PyExc_SystemError, "protium rows: the function returned NULL");
      goto free_lists;
    }
    int walked = out_walk(r, outs, got);
    for (Py_ssize_t j = 0; j < nout; j++) {
      PyObject *v;
      if (walked) {
        v = got[j];
        Py_INCREF(v);
      } else if (!(v = out_value(r, outs, j))) {
        raise_not_a_row(not_a_row, r);
        Py_DECREF(r);
        goto free_lists;
      }
      out_col *c = &ocs[j];
      if (c->kind && !out_store(c, i, v) && out_to_list(c, n, i) < 0) {
        Py_DECREF(v);
        Py_DECREF(r);
        goto free_lists;
      }
      if (c->kind == 0)
        PyList_SET_ITEM(c->list, i, v); /* steals v */
      else
        Py_DECREF(v);
    }
    Py_DECREF(r);
    fresh = 0;
    if (Py_REFCNT(row) != 1) {
      Py_CLEAR(row);
      continue;
    }
#if ROWS_IN_PLACE
    if (dict_version(row) == version) continue;
#endif
    if (!same_keys(row, names)) {
      Py_CLEAR(row);
      continue;
    }
    fresh = 1; /* same keys, values the function may have changed: all stored anew */
  }
  result = PyTuple_New(nout);
  if (!result) goto free_lists;
  for (Py_ssize_t j = 0; j < nout; j++) {
    PyObject *v = ocs[j].kind == 0 ? ocs[j].list : Py_None;
    if (v == Py_None) Py_INCREF(v);
    ocs[j].list = NULL;
    PyTuple_SET_ITEM(result, j, v);
  }
free_lists:
  for (Py_ssize_t j = 0; j < nout; j++) Py_XDECREF(ocs[j].list);
  Py_XDECREF(row);
free_cols:
  PyMem_Free(ins);
  PyMem_Free(ocs);
  PyMem_Free(vals);
  PyMem_Free(own);
  PyMem_Free(got);
  return result;
}

/* The Python version this library was built for (PY_VERSION_HEX): the
 * package loads it only into the same major.minor. */
unsigned long pt_rows_abi(void) { return PY_VERSION_HEX; }
