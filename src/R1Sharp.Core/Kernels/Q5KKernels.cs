// Q5_K weights with Q8_K activations.
using R1Sharp.Tensors;

namespace R1Sharp.Kernels;

internal static unsafe class Q5KKernels
{
    public static TypeKernels Create(SimdLevel level) => QuantBlockKernels.Create<Q5_KBlock>();
}
