// Embedding lookup: out[i, :] = table[ids[i], :] for i32 or i64 ids and rows of any element type, moved in 2- or
// 4-byte units.
//
// Bounds: a GPU cannot throw, and copying ids back to validate them on the host would stall the stream (and break
// graph capture). Instead embedding_check_* runs first, as one block: it finds the first out-of-range position with a
// fixed-order block reduction (deterministic) and, unless an earlier launch already reported one, records
// {position, id, site} in a small device record. Launches on one stream run in order, so the record always holds the
// first failure. The host reads the record when it synchronises and throws an ArgumentOutOfRangeException naming the
// op, id and table size (CudaKernels/Embedding.cs). The gather kernel skips out-of-range ids, so it never reads outside
// the table.
//
// Table gradient (embedding_backward_*): dtable row v is the sum of dy's rows at the positions i with ids[i] = v, added
// in position order, without atomics. embedding_backward_links_* gives every position i the next position with the same
// id (next[i], -1 for none) and marks the first of each id (head[i]); optimizer.cu's fill_f32 clears dtable; then
// embedding_backward_sum_* runs one thread per (position, column), and the thread of each head walks its id's chain in
// order and writes the row's column once. The links scan the ids from each position to the neighbouring occurrences,
// O(count²) comparisons at worst (all ids distinct): cheap next to the sum for a batch of token sequences.
//
// Launch: check: grid 1, block a multiple of 32; the others: any grid, block a multiple of 32. No shared memory.
#include "common.cuh"

template <class Id>
static __device__ __forceinline__ void embedding_check(const Id* __restrict__ ids, long long count,
                                                       long long vocabulary, long long* __restrict__ record,
                                                       long long site)
{
    __shared__ long long scratch[32];
    constexpr long long None = 0x7fffffffffffffffll;
    long long first = None;
    for (long long i = threadIdx.x; i < count; i += blockDim.x)
        if (static_cast<unsigned long long>(static_cast<long long>(ids[i])) >=
            static_cast<unsigned long long>(vocabulary))
        {
            first = i; // a thread's positions only grow: its first bad one is its smallest
            break;
        }
    first = mf::block_reduce(first, scratch, None, mf::Min{});
    if (threadIdx.x == 0 && first != None && record[0] < 0)
    {
        record[0] = first;
        record[1] = static_cast<long long>(ids[first]);
        record[2] = site;
    }
}

template <class Id, class T>
static __device__ __forceinline__ void embedding_gather(const Id* __restrict__ ids, const T* __restrict__ table,
                                                        T* __restrict__ out, long long count, long long vocabulary,
                                                        int row_units)
{
    const unsigned long long total = static_cast<unsigned long long>(count) * row_units;
    for (unsigned long long i = mf::grid_first(); i < total; i += mf::grid_stride())
    {
        const unsigned long long row = i / static_cast<unsigned>(row_units), column = i - row * row_units;
        const long long id = static_cast<long long>(ids[row]);
        if (static_cast<unsigned long long>(id) < static_cast<unsigned long long>(vocabulary))
            out[i] = table[static_cast<unsigned long long>(id) * row_units + column];
    }
}

template <class Id>
static __device__ __forceinline__ void embedding_backward_links(const Id* __restrict__ ids, long long count,
                                                                long long* __restrict__ next, int* __restrict__ head)
{
    for (unsigned long long i = mf::grid_first(); i < static_cast<unsigned long long>(count); i += mf::grid_stride())
    {
        const Id id = ids[i];
        long long following = -1;
        for (long long k = static_cast<long long>(i) + 1; k < count; ++k)
            if (ids[k] == id)
            {
                following = k;
                break;
            }
        int first = 1;
        for (long long k = static_cast<long long>(i) - 1; k >= 0; --k)
            if (ids[k] == id)
            {
                first = 0;
                break;
            }
        next[i] = following;
        head[i] = first;
    }
}

template <class Id>
static __device__ __forceinline__ void embedding_backward_sum(const Id* __restrict__ ids, const float* __restrict__ dy,
                                                              const long long* __restrict__ next,
                                                              const int* __restrict__ head, float* __restrict__ dtable,
                                                              long long count, long long vocabulary, int width)
{
    const unsigned long long total = static_cast<unsigned long long>(count) * width;
    for (unsigned long long i = mf::grid_first(); i < total; i += mf::grid_stride())
    {
        const unsigned long long position = i / static_cast<unsigned>(width), column = i - position * width;
        const long long id = static_cast<long long>(ids[position]);
        if (!head[position] || static_cast<unsigned long long>(id) >= static_cast<unsigned long long>(vocabulary))
            continue;
        float sum = 0.0f;
        for (long long k = static_cast<long long>(position); k >= 0; k = next[k])
            sum += dy[static_cast<unsigned long long>(k) * width + column];
        dtable[static_cast<unsigned long long>(id) * width + column] = sum;
    }
}

/// Records the first id outside [0, vocabulary) as {position, id, site} in record[0..2] unless record[0] >= 0.
extern "C" __global__ void embedding_check_i32(const int* __restrict__ ids, long long count, long long vocabulary,
                                               long long* __restrict__ record, long long site)
{
    embedding_check(ids, count, vocabulary, record, site);
}
MF_EXPORT_KERNEL(embedding_check_i32)

extern "C" __global__ void embedding_check_i64(const long long* __restrict__ ids, long long count, long long vocabulary,
                                               long long* __restrict__ record, long long site)
{
    embedding_check(ids, count, vocabulary, record, site);
}
MF_EXPORT_KERNEL(embedding_check_i64)

/// out [count, row_units] = rows ids[i] of table [vocabulary, row_units], in units of 2 or 4 bytes.
extern "C" __global__ void embedding_gather_i32_b2(const int* __restrict__ ids,
                                                   const unsigned short* __restrict__ table,
                                                   unsigned short* __restrict__ out, long long count,
                                                   long long vocabulary, int row_units)
{
    embedding_gather(ids, table, out, count, vocabulary, row_units);
}
MF_EXPORT_KERNEL(embedding_gather_i32_b2)

extern "C" __global__ void embedding_gather_i32_b4(const int* __restrict__ ids, const unsigned* __restrict__ table,
                                                   unsigned* __restrict__ out, long long count, long long vocabulary,
                                                   int row_units)
{
    embedding_gather(ids, table, out, count, vocabulary, row_units);
}
MF_EXPORT_KERNEL(embedding_gather_i32_b4)

extern "C" __global__ void embedding_gather_i64_b2(const long long* __restrict__ ids,
                                                   const unsigned short* __restrict__ table,
                                                   unsigned short* __restrict__ out, long long count,
                                                   long long vocabulary, int row_units)
{
    embedding_gather(ids, table, out, count, vocabulary, row_units);
}
MF_EXPORT_KERNEL(embedding_gather_i64_b2)

extern "C" __global__ void embedding_gather_i64_b4(const long long* __restrict__ ids,
                                                   const unsigned* __restrict__ table, unsigned* __restrict__ out,
                                                   long long count, long long vocabulary, int row_units)
{
    embedding_gather(ids, table, out, count, vocabulary, row_units);
}
MF_EXPORT_KERNEL(embedding_gather_i64_b4)

/// next[i]: the next position with ids[i]'s id (-1 for none); head[i]: 1 where no earlier position has it.
extern "C" __global__ void embedding_backward_links_i32(const int* __restrict__ ids, long long count,
                                                        long long* __restrict__ next, int* __restrict__ head)
{
    embedding_backward_links(ids, count, next, head);
}
MF_EXPORT_KERNEL(embedding_backward_links_i32)

extern "C" __global__ void embedding_backward_links_i64(const long long* __restrict__ ids, long long count,
                                                        long long* __restrict__ next, int* __restrict__ head)
{
    embedding_backward_links(ids, count, next, head);
}
MF_EXPORT_KERNEL(embedding_backward_links_i64)

/// dtable [vocabulary, width] rows read by ids (cleared beforehand): each the chain sum of dy [count, width] rows.
extern "C" __global__ void embedding_backward_sum_i32(const int* __restrict__ ids, const float* __restrict__ dy,
                                                      const long long* __restrict__ next, const int* __restrict__ head,
                                                      float* __restrict__ dtable, long long count, long long vocabulary,
                                                      int width)
{
    embedding_backward_sum(ids, dy, next, head, dtable, count, vocabulary, width);
}
MF_EXPORT_KERNEL(embedding_backward_sum_i32)

extern "C" __global__ void embedding_backward_sum_i64(const long long* __restrict__ ids, const float* __restrict__ dy,
                                                      const long long* __restrict__ next, const int* __restrict__ head,
                                                      float* __restrict__ dtable, long long count, long long vocabulary,
                                                      int width)
{
    embedding_backward_sum(ids, dy, next, head, dtable, count, vocabulary, width);
}
MF_EXPORT_KERNEL(embedding_backward_sum_i64)
