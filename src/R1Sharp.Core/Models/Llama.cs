// llama (R1-Distill-Llama): RMSNorm, RoPE on adjacent pairs, GQA, SwiGLU, optional tied output, no biases.
namespace R1Sharp.Models;

public static class Llama
{
    public static readonly DecoderDefinition Definition = new(RopeStyle.Normal, QkvBias: false);
}
