"""What runs inside the worker process of an implementation under test — and nothing else.

These modules are the only project code the untrusted process can see: under
bubblewrap this folder is bound read-only into the sandbox as the package
``bpruntime``, beside NumPy and the standard library. So they import only the
standard library, NumPy and each other (relative imports), never refimpl,
oracle or torch. Nothing here decides a verdict: the worker answers, the
grader (oracle.student.grade) judges.

    protocol.py   JSON-lines messages (no pickle), shared with the grader
    adapters.py   the interface's functions from the shapes students write
    imports.py    the packages a submission may not import, and the run-time guard
    worker.py     the worker's main loop
"""
