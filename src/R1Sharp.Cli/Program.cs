// Placeholder entry point so the solution builds on the gguf branch; the CLI branch replaces this file wholesale.
return 0;
