// Blocks built byte by byte from the ggml layout descriptions: dequantization must give the values worked out by
// hand (the literal checks) and, for every element, the value of a per-element decoder written from the
// description (the full-block checks). A quantize→dequantize round trip alone would not catch a misread layout.
using R1Sharp.Tensors;
using static R1Sharp.Tests.Quants.QuantTestData;

namespace R1Sharp.Tests.Quants;

public sealed class QuantBlockLayoutTests
{
    /// <summary>Byte i of the quant area: an arbitrary but fixed pattern that exercises every nibble and bit position.</summary>
    private static byte Pattern(int i) => (byte)(i * 37 + 11);
    private static byte Pattern2(int i) => (byte)(i * 91 + 5);

    [Fact]
    public void Q4_0()
    {
        var b = new byte[18];
        PutHalf(b, 0, 0.5f);
        for (int j = 0; j < 16; j++) b[2 + j] = (byte)(j | ((15 - j) << 4));
        var y = Dequantize(GgmlType.Q4_0, b, 32);
        Assert.Equal(-4f, y[0]);     // (0 − 8)·0.5
        Assert.Equal(3.5f, y[15]);   // (15 − 8)·0.5
        Assert.Equal(3.5f, y[16]);   // high nibble of byte 0 = 15
        Assert.Equal(-4f, y[31]);    // high nibble of byte 15 = 0
        for (int j = 0; j < 16; j++)
        {
            Assert.Equal((j - 8) * 0.5f, y[j]);
            Assert.Equal((15 - j - 8) * 0.5f, y[j + 16]);
        }
    }

    [Fact]
    public void Q4_1()
    {
        var b = new byte[20];
        PutHalf(b, 0, 0.25f);
        PutHalf(b, 2, -2f);
        for (int j = 0; j < 16; j++) b[4 + j] = (byte)(j | ((3 * j % 16) << 4));
        var y = Dequantize(GgmlType.Q4_1, b, 32);
        Assert.Equal(-2f, y[0]);
        Assert.Equal(1.75f, y[15]);  // 15·0.25 − 2
        Assert.Equal(-1.25f, y[17]); // 3·0.25 − 2
        for (int j = 0; j < 16; j++)
        {
            Assert.Equal(j * 0.25f - 2, y[j]);
            Assert.Equal(3 * j % 16 * 0.25f - 2, y[j + 16]);
        }
    }

    [Fact]
    public void Q5_0()
    {
        var b = new byte[22];
        PutHalf(b, 0, 0.125f);
        uint qh = 0x0001_8001; // 5th bit set for values 0, 15 and 16
        BitConverter.TryWriteBytes(b.AsSpan(2), qh);
        for (int j = 0; j < 16; j++) b[6 + j] = (byte)(j | ((15 - j) << 4));
        var y = Dequantize(GgmlType.Q5_0, b, 32);
        Assert.Equal(0f, y[0]);       // (0 | 16) − 16
        Assert.Equal(-1.875f, y[1]);  // (1 − 16)·0.125
        Assert.Equal(1.875f, y[15]);  // (15 | 16) − 16 = 15
        Assert.Equal(1.875f, y[16]);  // high nibble 15, bit 16 set
        Assert.Equal(-0.25f, y[17]);  // 14 − 16
        for (int j = 0; j < 32; j++)
        {
            int nibble = j < 16 ? j : 15 - (j - 16);
            int q = nibble | (int)((qh >> j) & 1) << 4;
            Assert.Equal((q - 16) * 0.125f, y[j]);
        }
    }

    [Fact]
    public void Q5_1()
    {
        var b = new byte[24];
        PutHalf(b, 0, 0.5f);
        PutHalf(b, 2, 1f);
        uint qh = 0xF0F0_1234;
        BitConverter.TryWriteBytes(b.AsSpan(4), qh);
        for (int j = 0; j < 16; j++) b[8 + j] = Pattern(j);
        var y = Dequantize(GgmlType.Q5_1, b, 32);
        Assert.Equal(6.5f, y[0]);   // 11·0.5 + 1, bit 0 of qh clear
        Assert.Equal(1f + 0.5f * (16 + (Pattern(4) & 0xF)), y[4]); // bit 4 of 0x1234 set
        for (int j = 0; j < 32; j++)
        {
            int nibble = j < 16 ? Pattern(j) & 0xF : Pattern(j - 16) >> 4;
            int q = nibble | (int)((qh >> j) & 1) << 4;
            Assert.Equal(q * 0.5f + 1f, y[j]);
        }
    }

    [Fact]
    public void Q8_0()
    {
        var b = new byte[34];
        PutHalf(b, 0, 0.25f);
        for (int j = 0; j < 32; j++) b[2 + j] = (byte)(sbyte)(j * 8 - 128);
        var y = Dequantize(GgmlType.Q8_0, b, 32);
        Assert.Equal(-32f, y[0]);
        Assert.Equal(30f, y[31]);
        for (int j = 0; j < 32; j++) Assert.Equal((j * 8 - 128) * 0.25f, y[j]);
    }

    [Fact]
    public void Q8_1()
    {
        var b = new byte[36];
        PutHalf(b, 0, 0.5f);
        PutHalf(b, 2, 7f); // the block sum d·Σq only feeds dot products
        for (int j = 0; j < 32; j++) b[4 + j] = (byte)(sbyte)(100 - 7 * j);
        var y = Dequantize(GgmlType.Q8_1, b, 32);
        Assert.Equal(50f, y[0]);
        Assert.Equal(-58.5f, y[31]);
        for (int j = 0; j < 32; j++) Assert.Equal((100 - 7 * j) * 0.5f, y[j]);
    }

    [Fact]
    public void Q2_K()
    {
        var b = new byte[84];
        for (int s = 0; s < 16; s++) b[s] = (byte)(s | ((15 - s) << 4)); // scale s, min 15 − s
        for (int i = 0; i < 64; i++) b[16 + i] = Pattern(i);
        PutHalf(b, 80, 0.5f);
        PutHalf(b, 82, 0.25f);
        var y = Dequantize(GgmlType.Q2_K, b, 256);
        Assert.Equal(-3.75f, y[0]);  // qs[0] = 0b00001011 → q 3, but scale 0; min 15 → −0.25·15
        Assert.Equal(-3.25f, y[33]); // qs[1] = 48, bits 2..3 → 0; sub-block 2: min 13
        Assert.Equal(5.25f, y[200]); // qs[40] = 211, bits 4..5 → 1; sub-block 12: 0.5·12·1 − 0.25·3
        for (int e = 0; e < 256; e++)
        {
            int h = e / 128, k = e % 128 / 32, l = e % 32, sub = e / 16;
            int q = (Pattern(32 * h + l) >> (2 * k)) & 3;
            Assert.Equal(0.5f * sub * q - 0.25f * (15 - sub), y[e]);
        }
    }

    [Fact]
    public void Q3_K()
    {
        var b = new byte[110];
        for (int i = 0; i < 32; i++) b[i] = Pattern2(i);
        for (int i = 0; i < 64; i++) b[32 + i] = Pattern(i);
        byte[] scales = [0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE, 0xE4, 0x1B, 0xFF, 0x00];
        scales.CopyTo(b, 96);
        PutHalf(b, 108, 0.5f);
        // signed 6-bit scales decoded by hand from the bytes above
        var hand = new Dictionary<int, int> { [0] = -32, [1] = 18, [2] = 20, [3] = -26, [4] = -8, [5] = 10, [6] = 28, [8] = 1, [12] = 25, [15] = -17 };
        var y = Dequantize(GgmlType.Q3_K, b, 256);
        Assert.Equal(-48f, y[0]);   // q: low 3, hmask bit set → 3; scale −32
        Assert.Equal(27f, y[16]);   // q 3, scale 18
        Assert.Equal(-28f, y[100]); // qs[4] bits 6..7 = 2, hmask[4] bit 3 clear → −2; scale 28
        for (int e = 0; e < 256; e++)
        {
            int h = e / 128, k = e % 128 / 32, l = e % 32, sub = e / 16;
            int low = (Pattern(32 * h + l) >> (2 * k)) & 3;
            int high = (Pattern2(l) >> (4 * h + k)) & 1;
            int q = low - (high != 0 ? 0 : 4);
            int lo4 = sub < 8 ? scales[sub] & 0xF : scales[sub - 8] >> 4;
            int hi2 = (scales[8 + sub % 4] >> (2 * (sub / 4))) & 3;
            int scale = (lo4 | hi2 << 4) - 32;
            if (hand.TryGetValue(sub, out int hs)) Assert.Equal(hs, scale);
            Assert.Equal(0.5f * scale * q, y[e]);
        }
    }

    private static readonly byte[] K4Scales = [0x41, 0x82, 0xC3, 0x04, 0x45, 0x86, 0xC7, 0x08, 0x9A, 0xBC, 0xDE, 0xF0];

    /// <summary>6-bit scale and min of sub-block j (0..7) of the 12 packed bytes, as the layout describes them.</summary>
    private static (int Scale, int Min) K4ScaleMin(byte[] s, int j) => j < 4
        ? (s[j] & 63, s[j + 4] & 63)
        : ((s[j + 4] & 0xF) | (s[j - 4] >> 6) << 4, (s[j + 4] >> 4) | (s[j] >> 6) << 4);

    [Fact]
    public void Q4_K()
    {
        var b = new byte[144];
        PutHalf(b, 0, 0.5f);
        PutHalf(b, 2, 0.25f);
        K4Scales.CopyTo(b, 4);
        for (int i = 0; i < 128; i++) b[16 + i] = Pattern(i);
        Assert.Equal((1, 5), K4ScaleMin(K4Scales, 0));
        Assert.Equal((26, 25), K4ScaleMin(K4Scales, 4));
        Assert.Equal((44, 43), K4ScaleMin(K4Scales, 5));
        Assert.Equal((0, 15), K4ScaleMin(K4Scales, 7));
        var y = Dequantize(GgmlType.Q4_K, b, 256);
        Assert.Equal(4.25f, y[0]);    // low nibble of qs[0] = 11; 0.5·1·11 − 0.25·5
        Assert.Equal(1.5f, y[40]);    // high nibble of qs[8] = 3; 0.5·2·3 − 0.25·6
        Assert.Equal(58.75f, y[130]); // low nibble of qs[66] = 5; 0.5·26·5 − 0.25·25
        Assert.Equal(-3.75f, y[255]); // scale 0, min 15
        for (int e = 0; e < 256; e++)
        {
            int g = e / 64, l = e % 32, sub = e / 32;
            byte qb = Pattern(32 * g + l);
            int q = e % 64 < 32 ? qb & 0xF : qb >> 4;
            var (sc, m) = K4ScaleMin(K4Scales, sub);
            Assert.Equal(0.5f * sc * q - 0.25f * m, y[e]);
        }
    }

    [Fact]
    public void Q5_K()
    {
        var b = new byte[176];
        PutHalf(b, 0, 0.5f);
        PutHalf(b, 2, 0.25f);
        K4Scales.CopyTo(b, 4);
        for (int i = 0; i < 32; i++) b[16 + i] = Pattern2(i);
        for (int i = 0; i < 128; i++) b[48 + i] = Pattern(i);
        var y = Dequantize(GgmlType.Q5_K, b, 256);
        Assert.Equal(12.25f, y[0]);    // nibble 11 + 16 (qh[0] bit 0); 0.5·1·27 − 1.25
        Assert.Equal(1.5f, y[40]);     // nibble 3, qh[8] bit 1 clear
        Assert.Equal(266.75f, y[130]); // nibble 5 + 16 (qh[2] bit 4); 0.5·26·21 − 6.25
        for (int e = 0; e < 256; e++)
        {
            int l = e % 32, sub = e / 32;
            byte qb = Pattern(32 * (sub / 2) + l);
            int q = (sub % 2 == 0 ? qb & 0xF : qb >> 4) + 16 * ((Pattern2(l) >> sub) & 1);
            var (sc, m) = K4ScaleMin(K4Scales, sub);
            Assert.Equal(0.5f * sc * q - 0.25f * m, y[e]);
        }
    }

    [Fact]
    public void Q6_K()
    {
        var b = new byte[210];
        for (int i = 0; i < 128; i++) b[i] = Pattern(i);
        for (int i = 0; i < 64; i++) b[128 + i] = Pattern2(i);
        for (int j = 0; j < 16; j++) b[192 + j] = (byte)(sbyte)(9 * j - 70);
        PutHalf(b, 208, 0.25f);
        var y = Dequantize(GgmlType.Q6_K, b, 256);
        Assert.Equal(87.5f, y[0]);    // (11 | 1 << 4) − 32 = −5; scale −70
        Assert.Equal(-119f, y[70]);   // high nibble of ql[6] = 14, qh[6] bits 4..5 = 2 → 14; scale −34
        Assert.Equal(218.5f, y[200]); // high nibble of ql[72] = 7, qh[40] bits 4..5 = 3 → 23; scale 38
        for (int e = 0; e < 256; e++)
        {
            int h = e / 128, k = e % 128 / 32, l = e % 32;
            byte lb = Pattern(64 * h + 32 * (k & 1) + l);
            int nibble = k < 2 ? lb & 0xF : lb >> 4;
            int high = (Pattern2(32 * h + l) >> (2 * k)) & 3;
            int q = (nibble | high << 4) - 32;
            int scale = 9 * (e / 16) - 70;
            Assert.Equal(0.25f * scale * q, y[e]);
        }
    }

    [Fact]
    public void Q8_K()
    {
        var b = new byte[292];
        BitConverter.TryWriteBytes(b.AsSpan(0), 0.125f);
        for (int i = 0; i < 256; i++) b[4 + i] = (byte)(i * 7 - 100);
        var y = Dequantize(GgmlType.Q8_K, b, 256);
        Assert.Equal(-12.5f, y[0]);
        Assert.Equal(-13.375f, y[255]); // 255·7 − 100 = 1685 → byte 149 → −107
        for (int i = 0; i < 256; i++) Assert.Equal((sbyte)(byte)(i * 7 - 100) * 0.125f, y[i]);
    }

    [Fact]
    public void Q8_KQuantizeWritesBlockSumsOfEach16Quants()
    {
        var x = Gaussian(512, seed: 3);
        var q = Quantize(GgmlType.Q8_K, x);
        for (int blk = 0; blk < 2; blk++)
            for (int j = 0; j < 16; j++)
            {
                int sum = 0;
                for (int i = 0; i < 16; i++) sum += (sbyte)q[blk * 292 + 4 + 16 * j + i];
                Assert.Equal(sum, BitConverter.ToInt16(q, blk * 292 + 260 + 2 * j));
            }
    }

    [Fact]
    public void Q8_1QuantizeStoresScaleTimesQuantSum()
    {
        var x = Gaussian(64, seed: 4);
        var q = Quantize(GgmlType.Q8_1, x);
        for (int blk = 0; blk < 2; blk++)
        {
            float d = (float)BitConverter.ToHalf(q, blk * 36);
            int sum = 0;
            for (int i = 0; i < 32; i++) sum += (sbyte)q[blk * 36 + 4 + i];
            Assert.Equal((float)(Half)(sum * d), (float)BitConverter.ToHalf(q, blk * 36 + 2));
        }
    }

    [Fact]
    public void Q4_0QuantizeMapsTheSignedMaximumToMinus8()
    {
        // ggml's d = max / −8: the value of largest magnitude becomes quant 0 (−8·d), the opposite end saturates at 15
        var x = new float[32];
        x[0] = 4f; x[1] = -2f; x[2] = 1f;
        var q = Quantize(GgmlType.Q4_0, x);
        Assert.Equal(-0.5f, (float)BitConverter.ToHalf(q, 0));
        Assert.Equal(0, q[2] & 0xF);     // 4 / −0.5 = −8 → 0
        Assert.Equal(12, q[3] & 0xF);    // −2 / −0.5 = 4 → 12
        Assert.Equal(6, q[4] & 0xF);     // 1 / −0.5 = −2 → 6
        Assert.Equal(8, q[5] & 0xF);     // 0 → 8
    }
}
