/* libpq_version() -> int: libpq's version, from the library this module links. */
#include <Python.h>
#include <libpq-fe.h>

static PyObject *libpq_version(PyObject *self, PyObject *args) {
    return PyLong_FromLong(PQlibVersion());
}

static PyMethodDef methods[] = {
    {"libpq_version", libpq_version, METH_NOARGS, "libpq's version number."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "djbake_cext", NULL, -1, methods};

PyMODINIT_FUNC PyInit_djbake_cext(void) { return PyModule_Create(&module); }
