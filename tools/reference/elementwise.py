"""Fixtures for BinaryOp (add/sub/mul/div with broadcasting) and ScalarOp (scale, add_scalar).

Expected outputs come from torch's operators on the same f32 inputs (elementwise f32 arithmetic is exactly
rounded, so results must match to the last bit or within one rounding). Views: "<case>.view" metadata names the
view the test applies to input a before the op: "permute:0,2,1" or "slice:axis,start,length".
"""
import torch

from common import save_fixture, seeded

OPS = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div}


def main():
    gen = seeded(401)
    tensors, meta = {}, {}

    def case(name, op, a, b, view=None, a_view=None):
        tensors[f"{name}.a"] = a
        tensors[f"{name}.b"] = b
        tensors[f"{name}.out"] = OPS[op](a if a_view is None else a_view, b)
        meta[f"{name}.op"] = op
        if view:
            meta[f"{name}.view"] = view

    for n in (1, 7, 17, 33, 1023):
        for op in OPS:
            a = torch.randn(n, generator=gen) * 3
            b = torch.randn(n, generator=gen) * 3
            if op == "div":
                b = b.sign() * (b.abs() + 0.5)  # keep away from zero: inf/NaN are not compared here
            case(f"{op}_same_{n}", op, a, b)

    case("add_row_vector", "add", torch.randn(2, 3, 33, generator=gen), torch.randn(33, generator=gen))
    case("mul_column", "mul", torch.randn(4, 7, 17, generator=gen), torch.randn(7, 1, generator=gen))
    case("sub_outer", "sub", torch.randn(5, 1, generator=gen), torch.randn(1, 9, generator=gen))
    case("div_scalar_first", "div", torch.randn(1, generator=gen), torch.rand(2, 5, generator=gen) + 0.5)
    case("add_rank0", "add", torch.randn(3, 7, generator=gen), torch.randn((), generator=gen))
    case("mul_both_broadcast", "mul", torch.randn(4, 1, 5, generator=gen), torch.randn(3, 1, generator=gen))
    case("add_nchw_bias", "add", torch.randn(2, 6, 5, 7, generator=gen), torch.randn(6, 1, 1, generator=gen))
    case("add_a_broadcast", "add", torch.randn(6, 1, 1, generator=gen), torch.randn(2, 6, 5, 7, generator=gen))
    case("add_parallel", "add", torch.randn(70, 301, generator=gen), torch.randn(301, generator=gen))

    a = torch.randn(3, 5, 4, generator=gen)
    case("add_permuted", "add", a, torch.randn(5, generator=gen), "permute:0,2,1", a.permute(0, 2, 1))
    a = torch.randn(4, 9, 6, generator=gen)
    case("mul_sliced", "mul", a, torch.randn(6, generator=gen), "slice:1,2,5", a[:, 2:7, :])

    for name, op, value, x, view, xv in [
        ("scale_33", "scale", 0.125, torch.randn(33, generator=gen), None, None),
        ("scale_1023", "scale", -3.5, torch.randn(1023, generator=gen), None, None),
        ("add_scalar_17", "add_scalar", -2.5, torch.randn(17, generator=gen), None, None),
        ("add_scalar_1", "add_scalar", 7.0, torch.randn(1, generator=gen), None, None),
    ]:
        tensors[f"{name}.a"] = x
        tensors[f"{name}.out"] = x * value if op == "scale" else x + value
        meta.update({f"{name}.op": op, f"{name}.value": repr(value)})
    x = torch.randn(3, 5, 4, generator=gen)
    tensors["scale_permuted.a"] = x
    tensors["scale_permuted.out"] = x.permute(0, 2, 1) * 0.5
    meta.update({"scale_permuted.op": "scale", "scale_permuted.value": "0.5", "scale_permuted.view": "permute:0,2,1"})
    save_fixture("elementwise", tensors, meta)


if __name__ == "__main__":
    main()
