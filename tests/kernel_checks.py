"""Shared checks for the kernel tests (tests/test_dense_kernel.py, tests/test_blocked_kernel.py):
two methods compared parameter by parameter and Adam state by Adam state."""
from __future__ import annotations

import numpy as np


def method_state(m) -> dict[str, np.ndarray]:
    """Every parameter and every Adam state tensor of the method, by name."""
    out = {}
    for name, mod in m.modules().items():
        for k, v in mod.state_dict().items():
            out[f"{name}.{k}"] = v.detach().numpy().copy()
    for name, opt in m.optimizers().items():
        for i, st in enumerate(opt.state.values()):
            for k, v in st.items():
                out[f"{name}.state{i}.{k}"] = np.asarray(v).copy()
    return out


def assert_same_state(a, b, atol: float, rtol: float) -> None:
    """The two methods hold the same parameters and Adam state, to the given tolerances."""
    sa, sb = method_state(a), method_state(b)
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_allclose(sa[k], sb[k], atol=atol, rtol=rtol, err_msg=k)
