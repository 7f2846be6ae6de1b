// qwen2 (R1-Distill-Qwen): the llama block plus biases on Q, K and V, and RoPE on NEOX halves.
namespace R1Sharp.Models;

public static class Qwen2
{
    public static readonly DecoderDefinition Definition = new(RopeStyle.Neox, QkvBias: true);
}
