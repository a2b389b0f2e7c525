/* A base type that gives its Python subclasses the buffer protocol on CPython 3.9-3.11.
 *
 * Before 3.12 a class written in Python cannot export a buffer (``__buffer__`` is only
 * called by 3.12+), so ``memoryview(lazy)`` raises TypeError. A subclass of this type
 * inherits ``bf_getbuffer``, which calls ``self.__buffer__(flags)`` and re-exports the
 * buffer of the object it returns (a memoryview or anything else with a buffer).
 *
 * Ownership: ``view->obj`` is the instance itself (a new reference, as the protocol
 * asks of an exporter, so ``memoryview(lazy).obj is lazy``); the buffer obtained from what
 * ``__buffer__`` returned lives in a heap ``Py_buffer`` kept in ``view->internal`` and
 * holds that object, and so the memory, until the consumer releases the view. The
 * consumer's ``view`` points at that buffer's shape/strides/format, which stay valid
 * for as long as it is held. The type adds no fields: a subclass's instances keep
 * object's layout, and ``object.__new__`` still makes them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static int
bufferbase_getbuffer(PyObject *self, Py_buffer *view, int flags)
{
    Py_buffer *inner;
    PyObject *src;

    view->obj = NULL;
    src = PyObject_CallMethod(self, "__buffer__", "i", flags);
    if (src == NULL) {
        return -1;
    }
    inner = PyMem_Malloc(sizeof(Py_buffer));
    if (inner == NULL) {
        Py_DECREF(src);
        PyErr_NoMemory();
        return -1;
    }
    if (PyObject_GetBuffer(src, inner, flags) < 0) {
        PyMem_Free(inner);
        Py_DECREF(src);
        return -1;
    }
    /* inner->obj holds its own reference to what __buffer__ returned */
    Py_DECREF(src);
    *view = *inner;
    Py_INCREF(self);
    view->obj = self;
    view->internal = inner;
    return 0;
}

static void
bufferbase_releasebuffer(PyObject *self, Py_buffer *view)
{
    Py_buffer *inner = (Py_buffer *)view->internal;

    (void)self;
    if (inner != NULL) {
        view->internal = NULL;
        PyBuffer_Release(inner);
        PyMem_Free(inner);
    }
    /* PyBuffer_Release drops view->obj (self) after this returns */
}

static PyBufferProcs bufferbase_as_buffer = {
    .bf_getbuffer = bufferbase_getbuffer,
    .bf_releasebuffer = bufferbase_releasebuffer,
};

static PyTypeObject BufferBase_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "numpack._bufferbase.BufferBase",
    .tp_basicsize = sizeof(PyObject),
    .tp_as_buffer = &bufferbase_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Base class exporting the buffer that self.__buffer__(flags) returns.",
};

static struct PyModuleDef bufferbase_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_bufferbase",
    .m_doc = "The buffer protocol for Python classes before CPython 3.12.",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__bufferbase(void)
{
    PyObject *m;

    /* object's own tp_new, so object.__new__(Subclass) stays allowed */
    BufferBase_Type.tp_new = PyBaseObject_Type.tp_new;
    BufferBase_Type.tp_base = &PyBaseObject_Type;
    if (PyType_Ready(&BufferBase_Type) < 0) {
        return NULL;
    }
    m = PyModule_Create(&bufferbase_module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&BufferBase_Type);
    if (PyModule_AddObject(m, "BufferBase", (PyObject *)&BufferBase_Type) < 0) {
        Py_DECREF(&BufferBase_Type);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
