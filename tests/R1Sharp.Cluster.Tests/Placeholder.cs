namespace R1Sharp.Cluster.Tests; internal static class Placeholder {}
