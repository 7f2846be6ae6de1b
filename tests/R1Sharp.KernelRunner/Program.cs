// Runs the xUnit facts and theories of this assembly (the kernel and quant-format tests, compiled in from
// R1Sharp.Tests) by reflection, one line per failure and a count at the end; exit code 1 if any failed.
// Arguments: substrings of "Class.Method" to run only those (all when none).
using System.Reflection;
using R1Sharp.Kernels;

int passed = 0, failed = 0, skipped = 0;
Console.WriteLine($"{System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture}: kernel levels {string.Join(", ", Simd.Supported)} (best {Simd.Best})");
foreach (Type type in Assembly.GetExecutingAssembly().GetTypes().OrderBy(t => t.FullName))
{
    if (type.IsAbstract || !type.IsClass || type.GetConstructor(Type.EmptyTypes) == null) continue;
    foreach (MethodInfo m in type.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly))
    {
        var fact = m.GetCustomAttribute<FactAttribute>();
        if (fact == null) continue;
        string name = $"{type.Name}.{m.Name}";
        if (args.Length > 0 && !args.Any(a => name.Contains(a, StringComparison.Ordinal))) continue;
        if (fact.Skip != null) { skipped++; Console.WriteLine($"SKIP {name}: {fact.Skip}"); continue; }
        List<object?[]> cases;
        try
        {
            cases = Cases(type, m).ToList();
        }
        catch (Exception e)
        {
            failed++;
            Exception inner = e is TargetInvocationException { InnerException: { } ie } ? ie : e;
            Console.WriteLine($"FAIL {name}: its cases: {inner.GetType().Name}: {inner.Message.Split('\n')[0]}\n{inner.StackTrace}");
            continue;
        }
        foreach (object?[] data in cases)
        {
            string label = data.Length == 0 ? name : $"{name}({string.Join(", ", data)})";
            try
            {
                object? instance = m.IsStatic ? null : Activator.CreateInstance(type);
                try
                {
                    object? r = m.Invoke(instance, data);
                    if (r is Task task) task.GetAwaiter().GetResult();
                }
                finally { (instance as IDisposable)?.Dispose(); }
                passed++;
            }
            catch (Exception e)
            {
                failed++;
                Exception inner = e is TargetInvocationException { InnerException: { } ie } ? ie : e;
                Console.WriteLine($"FAIL {label}: {inner.GetType().Name}: {inner.Message.Split('\n')[0]}");
            }
        }
    }
}
Console.WriteLine($"passed {passed}, failed {failed}, skipped {skipped}");
return failed == 0 && passed > 0 ? 0 : 1;

// The argument lists of a fact (one empty list) or a theory ([InlineData] and [MemberData] of static members).
static IEnumerable<object?[]> Cases(Type type, MethodInfo m)
{
    if (m.GetCustomAttribute<TheoryAttribute>() == null)
    {
        yield return [];
        yield break;
    }
    foreach (var inline in m.GetCustomAttributes<InlineDataAttribute>())
        foreach (object?[] row in inline.GetData(m)) yield return row;
    // [MemberData] read from the metadata (its MemberType named argument did not always come back on the attribute object)
    foreach (CustomAttributeData member in m.GetCustomAttributesData().Where(a => a.AttributeType == typeof(MemberDataAttribute)))
    {
        string memberName = (string)member.ConstructorArguments[0].Value!;
        object?[] parameters = member.ConstructorArguments.Count > 1 && member.ConstructorArguments[1].Value is IEnumerable<CustomAttributeTypedArgument> ps
            ? ps.Select(a => a.Value).ToArray() : [];
        Type source = member.NamedArguments.FirstOrDefault(a => a.MemberName == "MemberType").TypedValue.Value as Type ?? type;
        const BindingFlags Flags = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.FlattenHierarchy;
        PropertyInfo? property = source.GetProperty(memberName, Flags);
        MethodInfo? method = property == null ? source.GetMethod(memberName, Flags) : null;
        FieldInfo? field = property == null && method == null ? source.GetField(memberName, Flags) : null;
        object? value = property != null ? property.GetValue(null) : method != null ? method.Invoke(null, parameters) : field?.GetValue(null);
        if (value == null)
            throw new InvalidOperationException($"no data from {source.Name}.{memberName} (property {property != null}, method {method != null}, field {field != null})");
        foreach (object row in (System.Collections.IEnumerable)value)
            yield return row as object?[] ?? throw new InvalidOperationException($"{type.Name}.{m.Name}: a row of {row.GetType()}");
    }
}
