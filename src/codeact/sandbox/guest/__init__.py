"""Code that runs INSIDE the sandbox: the kernel, the inner zygote, the confinement layers.

Everything here imports only the standard library and its siblings (relative imports), because
it starts in a bare interpreter (`python -I -B`) that must not import `codeact`: the package is
slow to import and holds host code. The entry scripts (`confine.py`, `zygote.py`, `kernel.py`)
are run by path; run that way they register this folder as the private package `_codeact_guest`
so their relative imports work unchanged. `wire` is the one module the host imports for the
frame format both ends share.
"""

__all__: list[str] = []
