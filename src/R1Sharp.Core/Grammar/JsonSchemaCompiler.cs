// JSON Schema (draft 2020-12, 2019-09, draft-07, draft-06, draft-04) compiled into a grammar of the JSON texts the
// schema accepts. Properties come in the schema's order; whitespace, integer digits, fraction digits and long
// strings are bounded so that a model is steered to finish (see docs/structured-outputs.md). A keyword that
// constrains instances and cannot be compiled exactly is refused (UnsupportedSchemaException names it): the
// grammar never accepts a text the schema rejects.
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace R1Sharp.Grammar;

public sealed record JsonSchemaOptions
{
    /// <summary>additionalProperties defaults to false (OpenAI's strict mode) instead of true.</summary>
    public bool Strict { get; init; }
    /// <summary>A maxLength above this is lowered to it (the grammar is then stricter than the schema, never looser);
    /// strings without maxLength stay unbounded.</summary>
    public int MaxBoundedStringLength { get; init; } = 1024;
    /// <summary>Likewise for maxItems: a larger bound is lowered to this.</summary>
    public int MaxBoundedItems { get; init; } = 256;
}

public static class JsonSchemaCompiler
{
    /// <summary>Integer digits allowed (as llama.cpp's JSON grammars), fraction digits, exponent digits.</summary>
    public const int MaxIntegerDigits = 16, MaxFractionDigits = 16, MaxExponentDigits = 3;
    /// <summary>Spaces or tabs allowed after a newline between JSON tokens.</summary>
    public const int MaxIndent = 20;

    public static GrammarDefinition Compile(string schemaJson, JsonSchemaOptions? options = null)
    {
        JsonNode? node;
        try
        {
            // JSON that System.Text.Json parses but its nodes refuse when read: repeated member names, lone surrogates
            CheckStrings(schemaJson);
            node = JsonNode.Parse(schemaJson, documentOptions: new JsonDocumentOptions { MaxDepth = 512, AllowDuplicateProperties = false });
        }
        catch (JsonException e) { throw new GrammarException($"the schema is not valid JSON: {FirstLine(e.Message)}"); }
        return Compile(node, options);
    }

    /// <summary>Every string and member name must be Unicode text: an escaped surrogate without its pair is refused.</summary>
    private static void CheckStrings(string json)
    {
        var reader = new Utf8JsonReader(System.Text.Encoding.UTF8.GetBytes(json), new JsonReaderOptions { MaxDepth = 512 });
        while (reader.Read())
        {
            if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.PropertyName)) continue;
            try { reader.GetString(); }
            catch (InvalidOperationException)
            {
                throw new GrammarException("the schema is not valid JSON text: a string escapes half of a UTF-16 surrogate pair");
            }
        }
    }

    public static GrammarDefinition Compile(JsonNode? schema, JsonSchemaOptions? options = null)
    {
        var c = new Compiler(schema, options ?? new JsonSchemaOptions());
        return c.Run();
    }

    private static string FirstLine(string s) { int i = s.IndexOfAny(['\r', '\n']); return i < 0 ? s : s[..i]; }

    // Keywords that only annotate: ignored.
    private static readonly HashSet<string> s_annotations = new(StringComparer.Ordinal)
    {
        "title", "description", "examples", "example", "default", "$comment", "$schema", "$id", "id", "$anchor",
        "$dynamicAnchor", "$recursiveAnchor", "$vocabulary", "deprecated", "readOnly", "writeOnly", "contentEncoding",
        "contentMediaType", "contentSchema", "definitions", "$defs", "nullable", "discriminator", "xml", "externalDocs",
        "markdownDescription", "enumDescriptions", "markdownEnumDescriptions", "errorMessage", "defaultSnippets",
        "deprecationMessage", "doNotSuggest", "suggestSortText", "allowComments", "allowTrailingCommas", "strict",
    };

    // Keywords compiled here.
    private static readonly HashSet<string> s_supported = new(StringComparer.Ordinal)
    {
        "type", "enum", "const", "properties", "required", "additionalProperties", "items", "prefixItems", "additionalItems",
        "minItems", "maxItems", "uniqueItems", "minLength", "maxLength", "pattern", "format", "minimum", "maximum",
        "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "anyOf", "oneOf", "allOf", "$ref", "minProperties", "maxProperties",
    };

    // Keywords that constrain instances and are not compiled: refused.
    private static readonly HashSet<string> s_refused = new(StringComparer.Ordinal)
    {
        "not", "if", "then", "else", "dependentRequired", "dependentSchemas", "dependencies", "patternProperties",
        "propertyNames", "unevaluatedProperties", "unevaluatedItems", "contains", "minContains", "maxContains",
        "$dynamicRef", "$recursiveRef",
    };

    // The formats JSON Schema defines (a format outside this list is an annotation); those StringFormats lacks are refused.
    private static readonly HashSet<string> s_assertedFormats = new(StringComparer.Ordinal)
    {
        "date-time", "date", "time", "duration", "email", "idn-email", "hostname", "idn-hostname", "ipv4", "ipv6", "uri",
        "uri-reference", "iri", "iri-reference", "uuid", "uri-template", "json-pointer", "relative-json-pointer", "regex",
    };

    private static readonly string[] s_allTypes = ["null", "boolean", "object", "array", "string", "number"];

    private sealed class Compiler(JsonNode? root, JsonSchemaOptions options)
    {
        private readonly List<KeyValuePair<string, GNode>> _rules = [];
        private readonly Dictionary<string, int> _ruleIndex = new(StringComparer.Ordinal);
        private readonly Dictionary<string, string> _refRules = new(StringComparer.Ordinal);
        private readonly Dictionary<string, string> _schemaRules = new(StringComparer.Ordinal);
        private readonly HashSet<string> _names = new(StringComparer.Ordinal);
        private bool _refSiblingsIgnored;
        private int _depth;

        private static readonly GNode Nothing = new GAlt([]);
        private static readonly GNode Ws = new GRef("ws");

        public GrammarDefinition Run()
        {
            string draft = (root as JsonObject)?["$schema"]?.GetValueKind() == JsonValueKind.String ? root!["$schema"]!.GetValue<string>() : "";
            _refSiblingsIgnored = draft.Contains("draft-04") || draft.Contains("draft-06") || draft.Contains("draft-07")
                                  || draft.Contains("draft-03");
            AddRule("root", Nothing);
            AddRule("ws", new GRepeat(new GAlt([new GClass([(' ', ' '), ('\t', '\t')], false),
                new GSeq([new GLit("\n"), new GRepeat(new GClass([(' ', ' '), ('\t', '\t')], false), 0, MaxIndent)])]), 0, 1));
            GNode body = Schema(root, "#");
            SetRule("root", body);
            return new GrammarDefinition(_rules, "root");
        }

        private string AddRule(string name, GNode node)
        {
            _names.Add(name);
            _ruleIndex[name] = _rules.Count;
            _rules.Add(new(name, node));
            return name;
        }

        private void SetRule(string name, GNode node) => _rules[_ruleIndex[name]] = new(name, node);

        private string FreshName(string hint)
        {
            var sb = new StringBuilder();
            foreach (char ch in hint)
            {
                char c = char.ToLowerInvariant(ch);
                if (char.IsAsciiLetterOrDigit(c)) sb.Append(c);
                else if (sb.Length > 0 && sb[^1] != '-') sb.Append('-');
            }
            string b = sb.ToString().Trim('-');
            if (b.Length == 0) b = "schema";
            if (b.Length > 40) b = b[^40..].Trim('-');
            if (char.IsAsciiDigit(b[0])) b = "s-" + b;
            string name = b;
            for (int i = 2; _names.Contains(name) || name is "root" or "ws"; i++) name = $"{b}-{i}";
            _names.Add(name);
            return name;
        }

        private static UnsupportedSchemaException Refuse(string keyword, string path, string why) =>
            new(keyword, $"{path}: {why}");

        // ---------------- schemas ----------------

        private GNode Schema(JsonNode? s, string path)
        {
            if (++_depth > 200) throw new GrammarException($"{path}: the schema nests too deeply");
            try { return SchemaCore(s, path); }
            finally { _depth--; }
        }

        private GNode SchemaCore(JsonNode? s, string path)
        {
            if (s is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False)
                return v.GetValue<bool>() ? AnyValue() : Nothing;
            if (s is not JsonObject obj) throw new GrammarException($"{path}: a schema must be an object or a boolean");

            if (obj["$ref"] is JsonNode refNode)
            {
                string r = refNode.GetValueKind() == JsonValueKind.String ? refNode.GetValue<string>()
                    : throw new GrammarException($"{path}: $ref must be a string");
                if (_refSiblingsIgnored || !HasConstraints(obj, except: "$ref")) return RefRule(r, path);
                var rest = Clone(obj);
                rest.Remove("$ref");
                return Schema(new JsonObject { ["allOf"] = new JsonArray(new JsonObject { ["$ref"] = r }, rest) }, path);
            }

            if (obj.ContainsKey("not"))
            {
                var reduced = ApplyNot(obj, path);
                if (reduced is null) return Nothing;
                obj = reduced;
            }

            foreach (var (key, _) in obj)
            {
                if (s_refused.Contains(key)) throw Refuse(key, path, $"the keyword '{key}' is not supported");
            }

            if (obj["allOf"] is JsonNode allOf)
            {
                var merged = Clone(obj);
                merged.Remove("allOf");
                foreach (var branch in AsArray(allOf, "allOf", path))
                    merged = Merge(merged, ResolveTop(branch, path), path);
                return Schema(merged, path + "/allOf");
            }

            bool hasAny = obj["anyOf"] is not null, hasOne = obj["oneOf"] is not null;
            if (hasAny || hasOne)
            {
                if (hasAny && hasOne) throw Refuse("oneOf", path, "anyOf and oneOf together are not supported");
                string kw = hasAny ? "anyOf" : "oneOf";
                var baseSchema = Clone(obj);
                baseSchema.Remove(kw);
                var branches = new List<JsonObject>();
                foreach (var b in AsArray(obj[kw]!, kw, path))
                    branches.Add(Merge(Clone(baseSchema), ResolveTop(b, path), path));
                if (hasOne)
                    for (int i = 0; i < branches.Count; i++)
                        for (int j = i + 1; j < branches.Count; j++)
                            if (!Disjoint(branches[i], branches[j]))
                                throw Refuse("oneOf", path, $"oneOf branches {i} and {j} may both match (only disjoint branches are supported)");
                var alts = new List<GNode>();
                for (int i = 0; i < branches.Count; i++) alts.Add(Schema(branches[i], $"{path}/{kw}/{i}"));
                return alts.Count == 1 ? alts[0] : new GAlt(alts);
            }

            if (obj["const"] is not null || obj["enum"] is not null) return EnumNode(obj, path);

            var types = TypesOf(obj, path);
            var result = new List<GNode>();
            foreach (string t in types) result.Add(TypeNode(t, obj, path));
            return result.Count == 1 ? result[0] : new GAlt(result);
        }

        // "not" in the forms that compile exactly: not {} / true (nothing is valid: null returned), not false, and not of
        // types only (those types removed). Anything else is refused.
        private static JsonObject? ApplyNot(JsonObject obj, string path)
        {
            var n = obj["not"];
            var rest = Clone(obj);
            rest.Remove("not");
            if (n is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False)
                return v.GetValue<bool>() ? null : rest;
            if (n is not JsonObject no) throw new GrammarException($"{path}: not must be a schema");
            if (!HasConstraints(no, except: "")) return null;
            if (no.Any(kv => kv.Key != "type" && (s_supported.Contains(kv.Key) || s_refused.Contains(kv.Key))))
                throw Refuse("not", path, "'not' is supported only for {}, true, false and types");
            var excluded = TypesOf(no, path);
            if (excluded.Contains("number")) excluded.Add("integer");
            var types = TypesOf(rest, path);
            if (types.Contains("number") && excluded.Contains("integer") && !excluded.Contains("number"))
                throw Refuse("not", path, "'not' of integer beside number is not supported");
            types.RemoveAll(excluded.Contains);
            if (types.Count == 0) return null;
            rest["type"] = new JsonArray(types.Select(t => (JsonNode?)JsonValue.Create(t)).ToArray());
            return rest;
        }

        private static bool HasConstraints(JsonObject obj, string except)
        {
            foreach (var (key, _) in obj)
                if (key != except && (s_supported.Contains(key) || s_refused.Contains(key))) return true;
            return false;
        }

        private static IEnumerable<JsonNode?> AsArray(JsonNode n, string kw, string path) =>
            n as JsonArray ?? throw new GrammarException($"{path}: {kw} must be an array");

        private static JsonObject Clone(JsonObject o) => (JsonObject)o.DeepClone();

        // The types a schema allows, from "type" (all when absent); "integer" is dropped where "number" is present.
        private static List<string> TypesOf(JsonObject obj, string path)
        {
            var t = obj["type"];
            List<string> types;
            if (t is null) types = [.. s_allTypes];
            else if (t.GetValueKind() == JsonValueKind.String) types = [t.GetValue<string>()];
            else if (t is JsonArray a) types = a.Select(x => x?.GetValueKind() == JsonValueKind.String ? x.GetValue<string>()
                : throw new GrammarException($"{path}: type must hold strings")).Distinct().ToList();
            else throw new GrammarException($"{path}: type must be a string or an array");
            foreach (string x in types)
                if (x is not ("null" or "boolean" or "object" or "array" or "string" or "number" or "integer"))
                    throw new GrammarException($"{path}: unknown type '{x}'");
            if (types.Contains("number")) types.Remove("integer");
            return types;
        }

        private GNode TypeNode(string type, JsonObject obj, string path) => type switch
        {
            "null" => new GLit("null"),
            "boolean" => new GAlt([new GLit("true"), new GLit("false")]),
            "string" => Named(obj, path, "string", () => StringNode(obj, path)),
            "integer" => Named(obj, path, "integer", () => IntegerNode(obj, path)),
            "number" => Named(obj, path, "number", () => NumberNode(obj, path)),
            "object" => Named(obj, path, "object", () => ObjectNode(obj, path)),
            "array" => Named(obj, path, "array", () => ArrayNode(obj, path)),
            _ => throw new InvalidOperationException(type),
        };

        // One rule per distinct (schema, type): identical sub-schemas share a rule.
        private GNode Named(JsonObject obj, string path, string type, Func<GNode> build)
        {
            var keyObj = new JsonObject();
            foreach (var (k, v) in obj)
                if (!s_annotations.Contains(k) && (s_supported.Contains(k) || s_refused.Contains(k))) keyObj[k] = v?.DeepClone();
            string key = type + ":" + keyObj.ToJsonString();
            if (_schemaRules.TryGetValue(key, out string? name)) return new GRef(name);
            bool plain = keyObj.Count == 0 || (keyObj.Count == 1 && keyObj["type"] is not null);
            name = FreshName(plain ? type : path + "-" + type);
            _schemaRules[key] = name;
            AddRule(name, Nothing);
            SetRule(name, build());
            return new GRef(name);
        }

        private GNode AnyValue() => new GRef(EnsureAnyValue());

        private string EnsureAnyValue()
        {
            const string key = "value:";
            if (_schemaRules.TryGetValue(key, out string? name)) return name;
            name = FreshName("value");
            _schemaRules[key] = name;
            AddRule(name, Nothing);
            string obj = FreshName("object-any"), arr = FreshName("array-any");
            AddRule(obj, new GSeq([new GLit("{"), Ws, new GRepeat(new GSeq([StringLiteralAny(), Ws, new GLit(":"), Ws, new GRef(name), Ws,
                new GRepeat(new GSeq([new GLit(","), Ws, StringLiteralAny(), Ws, new GLit(":"), Ws, new GRef(name), Ws]), 0, -1)]), 0, 1), new GLit("}")]));
            AddRule(arr, new GSeq([new GLit("["), Ws, new GRepeat(new GSeq([new GRef(name), Ws,
                new GRepeat(new GSeq([new GLit(","), Ws, new GRef(name), Ws]), 0, -1)]), 0, 1), new GLit("]")]));
            SetRule(name, new GAlt([new GRef(obj), new GRef(arr), PlainRule("string", StringAny), PlainRule("number", () => NumberGrammar(null)),
                new GLit("true"), new GLit("false"), new GLit("null")]));
            return name;
        }

        private GNode PlainRule(string type, Func<GNode> build)
        {
            string key = type + ":{}";
            if (_schemaRules.TryGetValue(key, out string? name)) return new GRef(name);
            name = FreshName(type);
            _schemaRules[key] = name;
            AddRule(name, Nothing);
            SetRule(name, build());
            return new GRef(name);
        }

        private GNode StringLiteralAny() => PlainRule("string", StringAny);

        private GNode StringAny() => Quoted(new GRepeat(JsonChar, 0, -1));

        private static GNode Quoted(GNode content) => new GSeq([new GLit("\""), content, new GLit("\"")]);

        // ---------------- $ref ----------------

        private GNode RefRule(string r, string path)
        {
            if (_refRules.TryGetValue(r, out string? name)) return new GRef(name);
            var target = Resolve(r, path);
            name = FreshName(r.Length > 1 ? r : "root-ref");
            _refRules[r] = name;
            AddRule(name, Nothing);
            SetRule(name, Schema(target, r));
            return new GRef(name);
        }

        private JsonNode? Resolve(string r, string path)
        {
            if (!r.StartsWith('#')) throw Refuse("$ref", path, $"$ref '{r}' is not local (only '#...' references are supported)");
            string pointer = Uri.UnescapeDataString(r[1..]);
            if (pointer.Length > 0 && pointer[0] != '/') throw Refuse("$ref", path, $"$ref '{r}' names an anchor (only JSON pointers are supported)");
            JsonNode? cur = root;
            if (pointer.Length == 0) return cur;
            foreach (string raw in pointer[1..].Split('/'))
            {
                string part = raw.Replace("~1", "/").Replace("~0", "~");
                cur = cur switch
                {
                    JsonObject o when o.TryGetPropertyValue(part, out var x) => x,
                    JsonArray a when int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out int i) && i < a.Count => a[i],
                    _ => throw new GrammarException($"{path}: $ref '{r}' points to nothing"),
                };
            }
            return cur;
        }

        // A schema with its top-level $ref replaced by the target (merged with the siblings where they apply).
        private JsonObject ResolveTop(JsonNode? s, string path, int depth = 0)
        {
            if (depth > 32) throw Refuse("$ref", path, "a $ref cycle without progress");
            if (s is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False)
                return v.GetValue<bool>() ? new JsonObject() : new JsonObject { ["not"] = new JsonObject() };
            if (s is not JsonObject o) throw new GrammarException($"{path}: a schema must be an object or a boolean");
            if (o["$ref"] is not JsonNode rn) return Clone(o);
            string r = rn.GetValueKind() == JsonValueKind.String ? rn.GetValue<string>() : throw new GrammarException($"{path}: $ref must be a string");
            var target = ResolveTop(Resolve(r, path), r, depth + 1);
            if (_refSiblingsIgnored) return target;
            var rest = Clone(o);
            rest.Remove("$ref");
            return Merge(target, rest, path);
        }

        // ---------------- allOf merging ----------------

        private JsonObject Merge(JsonObject a, JsonObject b, string path)
        {
            if (b["$ref"] is not null) b = ResolveTop(b, path);
            if (a["$ref"] is not null) a = ResolveTop(a, path);
            if (b["allOf"] is JsonNode ball)
            {
                var bb = Clone(b);
                bb.Remove("allOf");
                foreach (var x in AsArray(ball, "allOf", path)) bb = Merge(bb, ResolveTop(x, path), path);
                b = bb;
            }
            var r = Clone(a);
            // additionalProperties of one side restricts the properties the other side adds
            ApplyAdditional(r, b);
            ApplyAdditional(b = Clone(b), a);
            foreach (var (k, vb) in b)
            {
                if (!r.TryGetPropertyValue(k, out var va) || va is null) { r[k] = vb?.DeepClone(); continue; }
                switch (k)
                {
                    case "type":
                        r[k] = IntersectTypes(va, vb!);
                        break;
                    case "properties":
                    {
                        var pa = (JsonObject)va;
                        foreach (var (pk, pv) in (JsonObject)vb!)
                            pa[pk] = pa.TryGetPropertyValue(pk, out var existing) && existing is not null
                                ? new JsonObject { ["allOf"] = new JsonArray(existing.DeepClone(), pv?.DeepClone()) } : pv?.DeepClone();
                        break;
                    }
                    case "required":
                        r[k] = new JsonArray(((JsonArray)va).Concat((JsonArray)vb!).Select(x => x!.GetValue<string>()).Distinct()
                            .Select(x => (JsonNode?)JsonValue.Create(x)).ToArray());
                        break;
                    case "additionalProperties" or "items" or "additionalItems":
                        if (va is JsonArray || vb is JsonArray)
                        {
                            if (!JsonNode.DeepEquals(va, vb)) throw Refuse(k, path, $"allOf with two different tuple '{k}'");
                            break;
                        }
                        r[k] = new JsonObject { ["allOf"] = new JsonArray(va.DeepClone(), vb?.DeepClone()) };
                        break;
                    case "enum":
                    {
                        var eb = ((JsonArray)vb!).Select(x => Canonical(x)).ToHashSet();
                        r[k] = new JsonArray(((JsonArray)va).Where(x => eb.Contains(Canonical(x))).Select(x => x?.DeepClone()).ToArray());
                        break;
                    }
                    case "const":
                        if (Canonical(va) != Canonical(vb)) { r.Remove("const"); r["enum"] = new JsonArray(); }
                        break;
                    case "minimum" or "minLength" or "minItems" or "minProperties":
                        r[k] = Num(va, k, path) >= Num(vb, k, path) ? va.DeepClone() : vb!.DeepClone();
                        break;
                    case "maximum" or "maxLength" or "maxItems" or "maxProperties":
                        r[k] = Num(va, k, path) <= Num(vb, k, path) ? va.DeepClone() : vb!.DeepClone();
                        break;
                    case "exclusiveMinimum" or "exclusiveMaximum":
                        if (va.GetValueKind() is JsonValueKind.True or JsonValueKind.False || vb!.GetValueKind() is JsonValueKind.True or JsonValueKind.False)
                        {
                            if (!JsonNode.DeepEquals(va, vb)) throw Refuse(k, path, $"allOf with draft-04 '{k}' on both sides");
                            break;
                        }
                        bool isMin = k == "exclusiveMinimum";
                        r[k] = (Num(va, k, path) >= Num(vb, k, path)) == isMin ? va.DeepClone() : vb.DeepClone();
                        break;
                    case "uniqueItems":
                        r[k] = va.GetValueKind() == JsonValueKind.True || vb!.GetValueKind() == JsonValueKind.True;
                        break;
                    case "anyOf" or "oneOf":
                    {
                        // (a1 | a2) & (b1 | b2): the pairwise merges
                        var cross = new JsonArray();
                        foreach (var x in (JsonArray)va)
                            foreach (var y in (JsonArray)vb!)
                                cross.Add(new JsonObject { ["allOf"] = new JsonArray(x?.DeepClone(), y?.DeepClone()) });
                        if (cross.Count > 64) throw Refuse(k, path, $"allOf of several {k} gives over 64 branches");
                        if (k == "oneOf") throw Refuse(k, path, "allOf of two oneOf is not supported");
                        r[k] = cross;
                        break;
                    }
                    default:
                        if (s_annotations.Contains(k) || (!s_supported.Contains(k) && !s_refused.Contains(k))) break;
                        if (!JsonNode.DeepEquals(va, vb)) throw Refuse(k, path, $"allOf with two different '{k}'");
                        break;
                }
            }
            if (r["anyOf"] is not null && r["oneOf"] is not null)
            {
                // (anyOf) & (oneOf) with disjoint oneOf branches: the pairwise merges are disjoint too
                var cross = new JsonArray();
                foreach (var x in (JsonArray)r["anyOf"]!)
                    foreach (var y in (JsonArray)r["oneOf"]!)
                        cross.Add(new JsonObject { ["allOf"] = new JsonArray(x?.DeepClone(), y?.DeepClone()) });
                if (cross.Count > 64) throw Refuse("anyOf", path, "anyOf with oneOf gives over 64 branches");
                r.Remove("anyOf");
                r.Remove("oneOf");
                r["anyOf"] = cross;
            }
            return r;
        }

        // Properties of 'target' missing from 'restrictor'.properties fall under restrictor's additionalProperties.
        private static void ApplyAdditional(JsonObject target, JsonObject restrictor)
        {
            if (restrictor["additionalProperties"] is not JsonNode ap || restrictor["patternProperties"] is not null) return;
            if (ap.GetValueKind() == JsonValueKind.True) return;
            if (target["properties"] is not JsonObject tp) return;
            var known = restrictor["properties"] as JsonObject;
            foreach (var (k, v) in tp.ToList())
                if (known is null || !known.ContainsKey(k))
                    tp[k] = new JsonObject { ["allOf"] = new JsonArray(v?.DeepClone(), ap.DeepClone()) };
        }

        private static JsonNode IntersectTypes(JsonNode a, JsonNode b)
        {
            static HashSet<string> Set(JsonNode n) => n is JsonArray arr ? arr.Select(x => x!.GetValue<string>()).ToHashSet() : [n.GetValue<string>()];
            var sa = Set(a);
            var sb = Set(b);
            var result = new List<string>();
            foreach (string t in sa)
            {
                if (sb.Contains(t)) result.Add(t);
                else if (t == "integer" && sb.Contains("number")) result.Add("integer");
                else if (t == "number" && sb.Contains("integer")) result.Add("integer");
            }
            return new JsonArray(result.Distinct().Select(x => (JsonNode?)JsonValue.Create(x)).ToArray());
        }

        private static decimal Num(JsonNode? n, string k, string path)
        {
            if (n is JsonValue v && v.GetValueKind() == JsonValueKind.Number)
            {
                if (decimal.TryParse(v.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture, out decimal d)) return d;
                double x = v.GetValue<double>();
                return x > 0 ? decimal.MaxValue : decimal.MinValue;
            }
            throw new GrammarException($"{path}: {k} must be a number");
        }

        internal static string Canonical(JsonNode? n) => n is null ? "null" : JsonText.Canonical(n);

        // ---------------- oneOf disjointness ----------------

        private bool Disjoint(JsonObject a, JsonObject b)
        {
            var ta = TypeSet(a);
            var tb = TypeSet(b);
            if (!ta.Overlaps(tb)) return true;
            var va = ValueSet(a);
            var vb = ValueSet(b);
            if (va is not null && vb is not null && !va.Overlaps(vb)) return true;
            // objects told apart by a required property with disjoint values
            if (a["properties"] is JsonObject pa && b["properties"] is JsonObject pb && !ta.Except(["object"]).Intersect(tb).Any())
            {
                var ra = Required(a);
                var rb = Required(b);
                foreach (var (k, sa) in pa)
                {
                    if (!ra.Contains(k) || !rb.Contains(k) || !pb.TryGetPropertyValue(k, out var sb)) continue;
                    if (sa is JsonObject oa && sb is JsonObject ob)
                    {
                        var x = ValueSet(ResolveTop(oa, "#"));
                        var y = ValueSet(ResolveTop(ob, "#"));
                        if (x is not null && y is not null && !x.Overlaps(y)) return true;
                    }
                }
            }
            return false;
        }

        private static HashSet<string> Required(JsonObject o) =>
            o["required"] is JsonArray r ? r.Select(x => x!.GetValue<string>()).ToHashSet() : [];

        private static HashSet<string> TypeSet(JsonObject o)
        {
            HashSet<string> s;
            if (o["type"] is JsonNode t)
                s = t is JsonArray a ? a.Select(x => x!.GetValue<string>()).ToHashSet() : [t.GetValue<string>()];
            else s = [.. s_allTypes, "integer"];
            if (s.Contains("number")) s.Add("integer");
            if (s.Contains("integer")) s.Add("number");
            if (ValueSet(o) is { } values)
            {
                // const/enum narrow the types to those of the values
                var vt = new HashSet<string>();
                foreach (string v in values)
                    vt.Add(v[0] switch { '"' => "string", '{' => "object", '[' => "array", 't' or 'f' => "boolean", 'n' => "null", _ => "number" });
                if (vt.Contains("number")) vt.Add("integer");
                s.IntersectWith(vt);
            }
            return s;
        }

        private static HashSet<string>? ValueSet(JsonObject o)
        {
            if (o["const"] is JsonNode c || o.ContainsKey("const")) return [Canonical(o["const"])];
            if (o["enum"] is JsonArray e) return e.Select(Canonical).ToHashSet();
            return null;
        }

        // ---------------- enum / const ----------------

        private GNode EnumNode(JsonObject obj, string path)
        {
            var values = new List<JsonNode?>();
            if (obj.ContainsKey("const")) values.Add(obj["const"]);
            if (obj["enum"] is JsonNode en)
            {
                var arr = en as JsonArray ?? throw new GrammarException($"{path}: enum must be an array");
                if (obj.ContainsKey("const"))
                {
                    string c = Canonical(obj["const"]);
                    if (!arr.Any(x => Canonical(x) == c)) values.Clear();
                }
                else values.AddRange(arr);
            }
            foreach (var (key, _) in obj)
                if (key is not ("enum" or "const" or "type") && (s_supported.Contains(key) || s_refused.Contains(key)))
                    throw Refuse(key, path, $"'{key}' beside enum/const is not supported");
            var types = obj["type"] is null ? null : TypesOf(obj, path);
            var alts = new List<GNode>();
            var seen = new HashSet<string>();
            foreach (var v in values)
            {
                string text = Canonical(v);
                if (!seen.Add(text)) continue;
                if (types is not null && !TypeMatches(v, types)) continue;
                alts.Add(new GLit(text));
            }
            return alts.Count == 1 ? alts[0] : new GAlt(alts);
        }

        private static bool TypeMatches(JsonNode? v, List<string> types) => v?.GetValueKind() switch
        {
            null or JsonValueKind.Null => types.Contains("null"),
            JsonValueKind.True or JsonValueKind.False => types.Contains("boolean"),
            JsonValueKind.String => types.Contains("string"),
            JsonValueKind.Object => types.Contains("object"),
            JsonValueKind.Array => types.Contains("array"),
            _ => types.Contains("number") || (types.Contains("integer") && IsIntegral(v.ToJsonString())),
        };

        private static bool IsIntegral(string number) =>
            decimal.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out decimal d) && d == decimal.Truncate(d);

        // ---------------- strings ----------------

        // One character of a JSON string: unescaped or an escape.
        private static readonly GNode JsonChar = new GAlt([
            new GClass([('"', '"'), ('\\', '\\'), (0, 0x1F)], true),
            new GSeq([new GLit("\\"), new GAlt([new GClass([('"', '"'), ('\\', '\\'), ('/', '/'), ('b', 'b'), ('f', 'f'), ('n', 'n'), ('r', 'r'), ('t', 't')], false),
                new GSeq([new GLit("u"), new GRepeat(HexDigit, 4, 4)])])]),
        ]);

        private static GClass HexDigit => new([('0', '9'), ('a', 'f'), ('A', 'F')], false);

        private GNode StringNode(JsonObject obj, string path)
        {
            int minLen = obj["minLength"] is JsonNode mn ? IntArg(mn, "minLength", path) : 0;
            int? maxLen = obj["maxLength"] is JsonNode mx ? IntArg(mx, "maxLength", path) : null;
            if (maxLen < minLen) return Nothing;
            string? format = obj["format"] is JsonNode f ? (f.GetValueKind() == JsonValueKind.String ? f.GetValue<string>() : throw new GrammarException($"{path}: format must be a string")) : null;
            string? pattern = obj["pattern"] is JsonNode p ? (p.GetValueKind() == JsonValueKind.String ? p.GetValue<string>() : throw new GrammarException($"{path}: pattern must be a string")) : null;
            GNode? content = null;
            if (format is not null && StringFormats.Get(format) is null && s_assertedFormats.Contains(format))
                throw Refuse("format", path, $"format '{format}' is not supported");
            if (format is not null && StringFormats.Get(format) is not null)
            {
                if (pattern is not null) throw Refuse("pattern", path, "pattern beside format is not supported");
                content = StringFormats.Get(format);
            }
            // a format JSON Schema does not define is an annotation (validators ignore it)
            if (content is null && pattern is not null) content = EcmaRegex.Translate(pattern);
            if (content is not null)
            {
                var (lo, hi) = EcmaRegex.Lengths(content);
                if (lo < minLen || (maxLen is int m && (hi < 0 || hi > m)))
                    throw Refuse(format is not null ? "format" : "pattern", path,
                        $"{(format is not null ? "format" : "pattern")} beside minLength/maxLength is not supported unless it implies them");
                return Quoted(JsonChars(content));
            }
            if (minLen > options.MaxBoundedStringLength)
                throw Refuse("minLength", path, $"minLength {minLen} is above the limit of {options.MaxBoundedStringLength}");
            int max = maxLen is int x ? Math.Min(x, options.MaxBoundedStringLength) : -1;
            return Quoted(new GRepeat(JsonChar, minLen, max));
        }

        private static int IntArg(JsonNode n, string k, string path)
        {
            decimal d = Num(n, k, path);
            if (d < 0 || d != decimal.Truncate(d)) throw new GrammarException($"{path}: {k} must be a non-negative integer");
            return d > int.MaxValue ? int.MaxValue : (int)d;
        }

        /// <summary>A node over the characters of a string value as the characters of its JSON text (escaping what must be).</summary>
        internal static GNode JsonChars(GNode n) => n switch
        {
            GLit l => LitChars(l.Text),
            GSeq s => new GSeq(s.Items.Select(JsonChars).ToList()),
            GAlt a => new GAlt(a.Items.Select(JsonChars).ToList()),
            GRepeat r => new GRepeat(JsonChars(r.Item), r.Min, r.Max),
            GClass c => ClassChars(c),
            _ => throw new InvalidOperationException(n.GetType().Name),
        };

        private static GNode LitChars(string text)
        {
            var sb = new StringBuilder();
            var items = new List<GNode>();
            foreach (Rune r in text.EnumerateRunes())
            {
                if (r.Value is '"' or '\\' || r.Value < 0x20)
                {
                    if (sb.Length > 0) { items.Add(new GLit(sb.ToString())); sb.Clear(); }
                    items.Add(EscapeOf(r.Value));
                }
                else sb.Append(r.ToString());
            }
            if (sb.Length > 0 || items.Count == 0) items.Add(new GLit(sb.ToString()));
            return items.Count == 1 ? items[0] : new GSeq(items);
        }

        // The escapes of a character that JSON must (or, for '/', may) escape.
        private static GNode EscapeOf(int c)
        {
            string hex = c.ToString("x4", CultureInfo.InvariantCulture);
            var u = new GSeq([new GLit("\\u"), .. hex.Select(h => char.IsAsciiLetter(h)
                ? (GNode)new GClass([(h, h), (char.ToUpperInvariant(h), char.ToUpperInvariant(h))], false) : new GLit(h.ToString()))]);
            string? shortForm = c switch { '"' => "\\\"", '\\' => "\\\\", '\b' => "\\b", '\f' => "\\f", '\n' => "\\n", '\r' => "\\r", '\t' => "\\t", '/' => "\\/", _ => null };
            return shortForm is null ? u : new GAlt([new GLit(shortForm), u]);
        }

        private static GNode ClassChars(GClass c)
        {
            var ranges = GrammarAutomaton.ClassRanges(c);
            bool Has(int x) => ranges.Any(r => r.Lo <= x && x <= r.Hi);
            // the class minus what JSON must escape (controls, quote, backslash), range by range
            var raw = new List<(int, int)>();
            (int Lo, int Hi)[] escaped = [(0, 0x1F), ('"', '"'), ('\\', '\\')];
            foreach (var (lo, hi) in ranges)
            {
                int a = lo;
                foreach (var (elo, ehi) in escaped)
                {
                    if (ehi < a || elo > hi) continue;
                    if (elo > a) raw.Add((a, elo - 1));
                    a = Math.Max(a, ehi + 1);
                }
                if (a <= hi) raw.Add((a, hi));
            }
            var alts = new List<GNode>();
            if (raw.Count > 0) alts.Add(new GClass(raw, false));
            bool allControls = Enumerable.Range(0, 0x20).All(Has);
            if (allControls)
            {
                // every control character: its short escapes and \u00XX, in one piece
                var shortChars = new List<(int, int)> { ('b', 'b'), ('f', 'f'), ('n', 'n'), ('r', 'r'), ('t', 't') };
                if (Has('"')) shortChars.Add(('"', '"'));
                if (Has('\\')) shortChars.Add(('\\', '\\'));
                if (Has('/')) shortChars.Add(('/', '/'));
                alts.Add(new GSeq([new GLit("\\"), new GAlt([new GClass(shortChars, false),
                    new GSeq([new GLit("u00"), new GClass([('0', '1')], false), HexDigit])])]));
            }
            else
            {
                for (int x = 0; x < 0x20; x++) if (Has(x)) alts.Add(EscapeOf(x));
                if (Has('"')) alts.Add(EscapeOf('"'));
                if (Has('\\')) alts.Add(EscapeOf('\\'));
            }
            return alts.Count == 1 ? alts[0] : new GAlt(alts);
        }

        // ---------------- numbers ----------------

        private GNode IntegerNode(JsonObject obj, string path)
        {
            CheckMultipleOf(obj, path, integer: true);
            var (lo, hi) = Bounds(obj, path, integer: true);
            return IntegerGrammar(lo, hi);
        }

        private GNode NumberNode(JsonObject obj, string path)
        {
            if (obj["multipleOf"] is JsonNode mo && Num(mo, "multipleOf", path) == 1) return IntegerNode(obj, path); // integers, written without a fraction
            CheckMultipleOf(obj, path, integer: false);
            if (obj["minimum"] is null && obj["maximum"] is null && obj["exclusiveMinimum"] is null && obj["exclusiveMaximum"] is null)
                return NumberGrammar(null);
            var (lo, loExcl, hi, hiExcl) = RawBounds(obj, path);
            if ((lo is decimal a && a != decimal.Truncate(a)) || (hi is decimal b && b != decimal.Truncate(b)))
                throw Refuse("minimum", path, "number bounds that are not integers are not supported");
            return NumberGrammar((lo, loExcl, hi, hiExcl));
        }

        private static void CheckMultipleOf(JsonObject obj, string path, bool integer)
        {
            if (obj["multipleOf"] is not JsonNode m) return;
            decimal d = Num(m, "multipleOf", path);
            if (integer && d > 0 && d <= 1 && 1 % d == 0) return; // every integer is a multiple of 1, 0.5, 0.25 ...
            throw Refuse("multipleOf", path, $"multipleOf {m.ToJsonString()} is not supported");
        }

        private static (decimal? Lo, bool LoExcl, decimal? Hi, bool HiExcl) RawBounds(JsonObject obj, string path)
        {
            decimal? lo = obj["minimum"] is JsonNode mn ? Num(mn, "minimum", path) : null;
            decimal? hi = obj["maximum"] is JsonNode mx ? Num(mx, "maximum", path) : null;
            bool loExcl = false, hiExcl = false;
            if (obj["exclusiveMinimum"] is JsonNode em)
            {
                if (em.GetValueKind() is JsonValueKind.True or JsonValueKind.False) loExcl = em.GetValue<bool>() && lo is not null;
                else
                {
                    decimal e = Num(em, "exclusiveMinimum", path);
                    if (lo is null || e >= lo) { lo = e; loExcl = true; }
                }
            }
            if (obj["exclusiveMaximum"] is JsonNode ex)
            {
                if (ex.GetValueKind() is JsonValueKind.True or JsonValueKind.False) hiExcl = ex.GetValue<bool>() && hi is not null;
                else
                {
                    decimal e = Num(ex, "exclusiveMaximum", path);
                    if (hi is null || e <= hi) { hi = e; hiExcl = true; }
                }
            }
            return (lo, loExcl, hi, hiExcl);
        }

        // Integer bounds as inclusive longs (null: unbounded).
        private static (long? Lo, long? Hi) Bounds(JsonObject obj, string path, bool integer)
        {
            var (lo, loExcl, hi, hiExcl) = RawBounds(obj, path);
            decimal limit = Pow10(MaxIntegerDigits);
            long? l = null, h = null;
            if (lo is decimal a)
            {
                decimal c = decimal.Ceiling(a);
                if (loExcl && c == a) c += 1;
                if (c >= limit) l = (long)limit; // nothing fits in the digits allowed
                else if (c > -limit) l = (long)c;
            }
            if (hi is decimal b)
            {
                decimal f = decimal.Floor(b);
                if (hiExcl && f == b) f -= 1;
                if (f <= -limit) h = -(long)limit;
                else if (f < limit) h = (long)f;
            }
            return (l, h);
        }

        private static decimal Pow10(int n) { decimal r = 1; for (int i = 0; i < n; i++) r *= 10; return r; }

        private static GNode IntegerGrammar(long? lo, long? hi)
        {
            if (lo is long a && hi is long b && a > b) return Nothing;
            var alts = new List<GNode>();
            // negative part: -y with y in [max(1, -hi), -lo]
            if (lo is null || lo < 0)
            {
                long yLo = hi is long h && h < 0 ? -h : 1;
                long? yHi = lo is long l ? -l : null;
                alts.Add(new GSeq([new GLit("-"), UIntRange(yLo, yHi)]));
            }
            if (hi is null || hi >= 0)
                alts.Add(UIntRange(lo is long l && l > 0 ? l : 0, hi));
            if ((lo is null || lo <= 0) && (hi is null || hi >= 0)) alts.Add(new GLit("-0")); // -0 equals 0
            return alts.Count == 1 ? alts[0] : new GAlt(alts);
        }

        private static readonly long s_maxUInt = (long)Pow10(MaxIntegerDigits) - 1;

        /// <summary>Decimal integers (no leading zeros) in [lo, hi] (hi null: up to the digit limit).</summary>
        internal static GNode UIntRange(long lo, long? hi)
        {
            long h = Math.Min(hi ?? s_maxUInt, s_maxUInt);
            if (lo > h) return Nothing;
            var alts = new List<GNode>();
            int dLo = Digits(lo), dHi = Digits(h);
            int fullFrom = -1; // a run of digit counts n whose whole range [10^(n-1), 10^n - 1] is in
            for (int n = dLo; n <= dHi + 1; n++)
            {
                long a = n > dHi ? 0 : Math.Max(lo, n == 1 ? 0 : (long)Pow10(n - 1));
                long b = n > dHi ? -1 : Math.Min(h, (long)Pow10(n) - 1);
                bool full = n >= 2 && n <= dHi && a == (long)Pow10(n - 1) && b == (long)Pow10(n) - 1;
                if (full) { if (fullFrom < 0) fullFrom = n; continue; }
                if (fullFrom >= 0)
                {
                    alts.Add(new GSeq([Digit('1', '9'), new GRepeat(Digit('0', '9'), fullFrom - 1, n - 2)]));
                    fullFrom = -1;
                }
                if (n > dHi || a > b) continue;
                alts.Add(SameLength(a.ToString(CultureInfo.InvariantCulture), b.ToString(CultureInfo.InvariantCulture)));
            }
            return alts.Count == 1 ? alts[0] : new GAlt(alts);
        }

        private static int Digits(long v) => v.ToString(CultureInfo.InvariantCulture).Length;

        // Digit strings of equal length between a and b inclusive.
        private static GNode SameLength(string a, string b)
        {
            if (a == b) return new GLit(a);
            int p = 0;
            while (a[p] == b[p]) p++;
            var prefix = a[..p];
            string ra = a[(p + 1)..], rb = b[(p + 1)..];
            char x = a[p], y = b[p];
            int r = ra.Length;
            var alts = new List<GNode>();
            bool aLow = ra.All(c => c == '0'), bHigh = rb.All(c => c == '9');
            char midLo = aLow ? x : (char)(x + 1), midHi = bHigh ? y : (char)(y - 1);
            if (!aLow) alts.Add(Cat(prefix, new GLit(x.ToString()), SameLength(ra, new string('9', r))));
            if (midLo <= midHi) alts.Add(Cat(prefix, Digit(midLo, midHi), AnyDigits(r)));
            if (!bHigh) alts.Add(Cat(prefix, new GLit(y.ToString()), SameLength(new string('0', r), rb)));
            return alts.Count == 1 ? alts[0] : new GAlt(alts);
        }

        private static GNode Cat(string prefix, GNode a, GNode b)
        {
            var items = new List<GNode>();
            if (prefix.Length > 0) items.Add(new GLit(prefix));
            items.Add(a);
            if (b is not GLit { Text: "" } && b is not GSeq { Items.Count: 0 }) items.Add(b);
            return new GSeq(items);
        }

        private static GClass Digit(char lo, char hi) => new([(lo, hi)], false);
        private static GNode AnyDigits(int n) => n == 0 ? new GSeq([]) : new GRepeat(Digit('0', '9'), n, n);

        private static readonly GNode s_frac = new GSeq([new GLit("."), new GRepeat(Digit('0', '9'), 1, MaxFractionDigits)]);
        private static readonly GNode s_exp = new GSeq([new GClass([('e', 'e'), ('E', 'E')], false), new GRepeat(new GClass([('+', '+'), ('-', '-')], false), 0, 1),
            new GRepeat(Digit('0', '9'), 1, MaxExponentDigits)]);
        private static readonly GNode s_zeroFrac = new GRepeat(new GSeq([new GLit("."), new GRepeat(new GLit("0"), 1, MaxFractionDigits)]), 0, 1);
        private static readonly GNode s_nonZeroFrac = new GSeq([new GLit("."), new GRepeat(new GLit("0"), 0, MaxFractionDigits - 1), Digit('1', '9'),
            new GRepeat(Digit('0', '9'), 0, MaxFractionDigits - 1)]);

        // A JSON number; with integer bounds: no exponent, the value in range exactly.
        private static GNode NumberGrammar((decimal? Lo, bool LoExcl, decimal? Hi, bool HiExcl)? bounds)
        {
            if (bounds is null)
                return new GSeq([new GRepeat(new GLit("-"), 0, 1), UIntRange(0, null), new GRepeat(s_frac, 0, 1), new GRepeat(s_exp, 0, 1)]);
            var (lo, loExcl, hi, hiExcl) = bounds.Value;
            var alts = new List<GNode>();
            // x >= 0 with |x| in [L, H]
            if (hi is null || hi > 0 || (hi == 0 && !hiExcl))
                alts.AddRange(Magnitude(lo is decimal l && l > 0 ? (l, loExcl) : (0, false), hi is decimal h ? (h, hiExcl) : null, zeroAllowed: lo is null || lo < 0 || (lo == 0 && !loExcl)));
            // x < 0: x = -y with y in [-hi, -lo]
            if (lo is null || lo < 0)
            {
                var yLo = hi is decimal h && h < 0 ? (-h, hiExcl) : (0m, true);
                var yHi = lo is decimal l ? (-l, loExcl) : ((decimal, bool)?)null;
                foreach (var m in Magnitude(yLo, yHi, zeroAllowed: false)) alts.Add(new GSeq([new GLit("-"), m]));
            }
            bool zeroIn = (lo is null || lo < 0 || (lo == 0 && !loExcl)) && (hi is null || hi > 0 || (hi == 0 && !hiExcl));
            if (zeroIn) alts.Add(new GSeq([new GLit("-0"), s_zeroFrac])); // -0 equals 0
            return alts.Count == 0 ? Nothing : alts.Count == 1 ? alts[0] : new GAlt(alts);
        }

        // Non-negative decimals y with lo <= y <= hi (bounds integral; exclusive flags), as integer part + fraction.
        private static IEnumerable<GNode> Magnitude((decimal V, bool Excl) lo, (decimal V, bool Excl)? hi, bool zeroAllowed)
        {
            decimal limit = Pow10(MaxIntegerDigits) - 1;
            long L = (long)Math.Min(lo.V, limit + 1);
            long? H = hi is { } h ? (long)Math.Min(h.V, limit + 1) : null;
            var frac = new GRepeat(s_frac, 0, 1);
            // integer part strictly between: any fraction
            long firstAny = lo.Excl || (L == 0 && !zeroAllowed) ? L + 1 : L;
            long? lastAny = H is long hh ? hh - 1 : null;
            if (lastAny is null || firstAny <= lastAny)
                yield return new GSeq([UIntRange(firstAny, lastAny), frac]);
            // integer part == L with a non-zero fraction when L itself is excluded
            if (firstAny == L + 1 && (H is null || L < H))
                yield return new GSeq([UIntRange(L, L), s_nonZeroFrac]);
            // integer part == H: the value H itself (zero fraction) unless excluded
            if (H is long top && !(hi!.Value.Excl) && top >= L && !(top == L && (lo.Excl || (L == 0 && !zeroAllowed))))
                yield return new GSeq([UIntRange(top, top), s_zeroFrac]);
        }

        // ---------------- objects ----------------

        private GNode ObjectNode(JsonObject obj, string path)
        {
            var props = obj["properties"] as JsonObject ?? (obj["properties"] is null ? new JsonObject() : throw new GrammarException($"{path}: properties must be an object"));
            var required = Required(obj);
            JsonNode? additional = obj["additionalProperties"];
            bool additionalAllowed;
            if (additional is null) { additionalAllowed = !options.Strict; additional = null; }
            else if (additional.GetValueKind() is JsonValueKind.True or JsonValueKind.False) { additionalAllowed = additional.GetValue<bool>(); additional = null; }
            else additionalAllowed = true;

            var members = new List<(string Key, bool Required, GNode Value)>();
            var allKeys = props.Select(p => p.Key).Union(required).ToList();
            foreach (var (k, v) in props)
            {
                GNode value = Schema(v, $"{path}/properties/{k}");
                if (value is GAlt { Items.Count: 0 })
                {
                    if (required.Contains(k)) return Nothing; // a required property that cannot have a value
                    continue;
                }
                members.Add((k, required.Contains(k), value));
            }
            // required names the properties do not declare: after the declared ones, in ordinal order
            foreach (string k in required.Order(StringComparer.Ordinal))
            {
                if (props.ContainsKey(k)) continue;
                if (!additionalAllowed) return Nothing;
                members.Add((k, true, additional is null ? AnyValue() : Schema(additional, $"{path}/additionalProperties")));
            }
            int minProps = obj["minProperties"] is JsonNode mp ? IntArg(mp, "minProperties", path) : 0;
            int? maxProps = obj["maxProperties"] is JsonNode xp ? IntArg(xp, "maxProperties", path) : null;
            int requiredCount = members.Count(m => m.Required);
            bool atLeastOne = minProps == 1 && requiredCount == 0;
            if (minProps > requiredCount && !atLeastOne)
                throw Refuse("minProperties", path, $"minProperties {minProps} above the {requiredCount} required properties is not supported");
            if (maxProps is int maxP)
            {
                if (maxP < requiredCount) return Nothing;
                if (additionalAllowed || members.Count > maxP)
                    throw Refuse("maxProperties", path, $"maxProperties {maxP} is not supported where more properties may appear");
            }

            GNode? addMember = null;
            if (additionalAllowed)
            {
                GNode value = additional is null ? AnyValue() : Schema(additional, $"{path}/additionalProperties");
                if (value is not GAlt { Items.Count: 0 })
                {
                    GNode key = allKeys.Count == 0 ? StringLiteralAny() : Quoted(StringExcept(allKeys, KeyRest()));
                    string addName = FreshName(path + "-additional");
                    AddRule(addName, new GSeq([key, Ws, new GLit(":"), Ws, value, Ws]));
                    addMember = new GRef(addName);
                }
            }
            return new GSeq([new GLit("{"), Ws, ObjectMembers(members, addMember, atLeastOne, path), new GLit("}")]);
        }

        // The members in schema order, additional ones anywhere between them, comma-separated: F(i) is members i..
        // with nothing before, T(i) members i.. after something (each with its comma). Linear in the member count:
        // when there are more than a few members each F(i) and T(i) is a rule of its own.
        private GNode ObjectMembers(List<(string Key, bool Required, GNode Value)> members, GNode? add, bool atLeastOne, string path)
        {
            int n = members.Count;
            GNode Member(int i) => new GSeq([new GLit(JsonText.Quote(members[i].Key)), Ws, new GLit(":"), Ws, members[i].Value, Ws]);
            GNode Comma(GNode m) => new GSeq([new GLit(","), Ws, m]);
            GNode Empty() => new GSeq([]);
            bool named = n > 4;
            string baseName = named ? FreshName(path + "-members") : "";
            GNode Name(string suffix, GNode body)
            {
                if (!named) return body;
                string name = FreshName($"{baseName}-{suffix}");
                AddRule(name, body);
                return new GRef(name);
            }
            GNode addStar = add is null ? Empty() : new GRepeat(Comma(add), 0, -1);
            GNode tNext = Name($"t{n}", addStar);
            GNode fNext = add is null ? (atLeastOne ? Nothing : Empty()) : Name($"f{n}", new GRepeat(new GSeq([add, tNext]), atLeastOne ? 1 : 0, 1));
            for (int i = n - 1; i >= 0; i--)
            {
                GNode mi = members[i].Required ? Comma(Member(i)) : new GRepeat(Comma(Member(i)), 0, 1);
                GNode t = Name($"t{i}", new GSeq([addStar, mi, tNext]));
                var fAlts = new List<GNode>();
                if (add is not null) fAlts.Add(new GSeq([add, t]));
                fAlts.Add(new GSeq([Member(i), tNext]));
                if (!members[i].Required) fAlts.Add(fNext);
                GNode f = Name($"f{i}", fAlts.Count == 1 ? fAlts[0] : new GAlt(fAlts));
                tNext = t;
                fNext = f;
            }
            return fNext;
        }

        // The rest of a property name once it differs from every declared one: any characters (escapes for controls only).
        private GNode KeyRest() => PlainRule("key-rest", () => new GRepeat(JsonChars(GClass.Any), 0, -1));

        // The JSON text of strings different from every one of the keys (the rest after the first difference: 'rest').
        private static GNode StringExcept(List<string> keys, GNode rest)
        {
            var trieRoot = new KeyTrie();
            foreach (string k in keys)
            {
                var node = trieRoot;
                foreach (Rune r in k.EnumerateRunes())
                {
                    if (!node.Children.TryGetValue(r.Value, out var next)) node.Children[r.Value] = next = new KeyTrie();
                    node = next;
                }
                node.IsKey = true;
            }
            return Build(trieRoot);

            GNode Build(KeyTrie t)
            {
                var alts = new List<GNode>();
                foreach (var (c, child) in t.Children.OrderBy(x => x.Key))
                    alts.Add(new GSeq([JsonChars(new GLit(char.ConvertFromUtf32(c))), Build(child)]));
                if (!t.IsKey) alts.Add(new GSeq([]));
                var others = new GClass(t.Children.Keys.Select(c => (c, c)).ToList(), true);
                alts.Add(new GSeq([JsonChars(others), rest]));
                return new GAlt(alts);
            }
        }

        private sealed class KeyTrie
        {
            public readonly Dictionary<int, KeyTrie> Children = [];
            public bool IsKey;
        }

        // ---------------- arrays ----------------

        private GNode ArrayNode(JsonObject obj, string path)
        {
            var prefix = new List<GNode>();
            JsonNode? rest;
            if (obj["prefixItems"] is JsonNode pi)
            {
                int i = 0;
                foreach (var s in AsArray(pi, "prefixItems", path)) prefix.Add(Schema(s, $"{path}/prefixItems/{i++}"));
                rest = obj["items"];
            }
            else if (obj["items"] is JsonArray tuple)
            {
                int i = 0;
                foreach (var s in tuple) prefix.Add(Schema(s, $"{path}/items/{i++}"));
                rest = obj["additionalItems"];
            }
            else rest = obj["items"];
            GNode? restNode = rest is null ? AnyValue() : Schema(rest, $"{path}/items");
            if (restNode is GAlt { Items.Count: 0 }) restNode = null;
            int minItems = obj["minItems"] is JsonNode mn ? IntArg(mn, "minItems", path) : 0;
            int? maxItems = obj["maxItems"] is JsonNode mx ? IntArg(mx, "maxItems", path) : null;
            if (obj["uniqueItems"] is JsonNode u && u.GetValueKind() == JsonValueKind.True && !(maxItems <= 1))
                throw Refuse("uniqueItems", path, "uniqueItems is not supported");
            if (maxItems < minItems) return Nothing;
            if (minItems > options.MaxBoundedItems) throw Refuse("minItems", path, $"minItems {minItems} is above the limit of {options.MaxBoundedItems}");
            if (maxItems > options.MaxBoundedItems) maxItems = options.MaxBoundedItems; // stricter than the schema, never looser
            // a prefix item that cannot match ends the array before it
            int k = prefix.FindIndex(p => p is GAlt { Items.Count: 0 });
            if (k >= 0) { prefix.RemoveRange(k, prefix.Count - k); restNode = null; if (minItems > k) return Nothing; }
            if (restNode is null && minItems > prefix.Count) return Nothing;
            GNode Item(GNode x) => new GSeq([x, Ws]);
            GNode Comma(GNode x) => new GSeq([new GLit(","), Ws, Item(x)]);

            GNode Items(int i) // elements i.. (0-based), each after a comma when i > 0
            {
                if (maxItems is int mx2 && i >= mx2) return new GSeq([]);
                if (i < prefix.Count)
                {
                    GNode e = new GSeq([i > 0 ? Comma(prefix[i]) : Item(prefix[i]), Items(i + 1)]);
                    return i < minItems ? e : new GRepeat(e, 0, 1);
                }
                if (restNode is null) return new GSeq([]);
                int lo = Math.Max(0, minItems - i);
                int hi = maxItems is int m ? m - i : -1;
                if (i > 0) return new GRepeat(Comma(restNode), lo, hi);
                GNode firstAndMore = new GSeq([Item(restNode), new GRepeat(Comma(restNode), Math.Max(0, lo - 1), hi < 0 ? -1 : hi - 1)]);
                return lo >= 1 ? firstAndMore : new GRepeat(firstAndMore, 0, 1);
            }
            return new GSeq([new GLit("["), Ws, Items(0), new GLit("]")]);
        }
    }
}
