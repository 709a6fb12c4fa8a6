// Sum of contiguous x down to broadcast-compatible target dims (the gradient of broadcasting, bias gradients, loss
// sums). The host splits x's axes into kept ones (the output's, in order) and reduced ones, each coalesced to at most
// mf::MaxRank dims with x's element strides (Ops/Reduce.cs ReduceAxes). One block per output element in a grid-stride
// loop; its threads stride over the reduced elements and a block reduction adds them in a fixed order: deterministic,
// no atomics.
//
// Launch: any grid, block a multiple of 32 up to 1024; no dynamic shared memory.
#include "common.cuh"

extern "C" __global__ void reduce_sum_f32(const float* __restrict__ x, float* __restrict__ y, long long outputs,
                                          int kept_rank, int k0, int k1, int k2, int k3, int k4, int k5, long long ks0,
                                          long long ks1, long long ks2, long long ks3, long long ks4, long long ks5,
                                          int reduced_rank, int r0, int r1, int r2, int r3, int r4, int r5,
                                          long long rs0, long long rs1, long long rs2, long long rs3, long long rs4,
                                          long long rs5, long long reduced)
{
    __shared__ float scratch[32];
    const int kept_dims[mf::MaxRank] = {k0, k1, k2, k3, k4, k5};
    const long long kept_strides[mf::MaxRank] = {ks0, ks1, ks2, ks3, ks4, ks5};
    const int reduced_dims[mf::MaxRank] = {r0, r1, r2, r3, r4, r5};
    const long long reduced_strides[mf::MaxRank] = {rs0, rs1, rs2, rs3, rs4, rs5};
    for (long long o = blockIdx.x; o < outputs; o += gridDim.x)
    {
        const float* base =
            x + mf::strided_offset(static_cast<unsigned long long>(o), kept_rank, kept_dims, kept_strides);
        float sum = 0.0f;
        for (long long i = threadIdx.x; i < reduced; i += blockDim.x)
            sum += base[mf::strided_offset(static_cast<unsigned long long>(i), reduced_rank, reduced_dims,
                                           reduced_strides)];
        sum = mf::block_sum(sum, scratch);
        if (threadIdx.x == 0) y[o] = sum;
    }
}
MF_EXPORT_KERNEL(reduce_sum_f32)
