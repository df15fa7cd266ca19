"""The reference engines besides refimpl: PyTorch autograd (torch_engine) and central finite
differences (finite_diff). Each implements refimpl's interface; neither imports refimpl."""
