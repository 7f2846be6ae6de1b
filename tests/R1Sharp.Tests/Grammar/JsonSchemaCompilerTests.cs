// The JSON Schema compiler: for each schema, the grammar accepts an instance text exactly when JsonSchema.Net
// says the instance is valid (instances written compactly, properties in schema order, digits within the
// bounds the grammar sets); keywords that cannot be compiled exactly are refused by name.
using System.Globalization;
using R1Sharp.Grammar;

namespace R1Sharp.Tests.Grammar;

public sealed class JsonSchemaCompilerTests
{
    private static CompiledGrammar Compile(string schema, bool strict = false) =>
        CompiledGrammar.Create(JsonSchemaCompiler.Compile(schema, new JsonSchemaOptions { Strict = strict }), GrammarTestVocab.Tiny);

    private static void AgreesWithValidator(string schema, params string[] instances)
    {
        var g = Compile(schema);
        var oracle = SchemaOracle.Load(schema);
        foreach (string text in instances)
        {
            bool expected = SchemaOracle.IsValid(oracle, text);
            bool actual = GrammarTestVocab.AcceptsText(g, text);
            Assert.True(expected == actual, $"schema {schema}\ninstance {text}: validator says {expected}, grammar says {actual}");
        }
    }

    [Fact]
    public void PrimitiveTypes() => AgreesWithValidator("""{"type": ["string", "null", "boolean"]}""",
        "\"x\"", "null", "true", "false", "1", "{}", "[]", "\"a\\\"b\\\\c\\u00e9\\n\"", "\"\u4e2d\U0001F600\"");

    [Fact]
    public void Numbers() => AgreesWithValidator("""{"type": "number"}""",
        "0", "-0", "12", "-12.5", "1e5", "1.5E-3", "01", "1.", ".5", "\"1\"", "-", "1e+10", "123456789012345.25");

    [Fact]
    public void ObjectsWithRequiredOptionalAndAdditional()
    {
        const string schema = """
            {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}, "c": {"type": "boolean"}},
             "required": ["b"], "additionalProperties": false}
            """;
        AgreesWithValidator(schema, "{\"b\":\"x\"}", "{\"a\":1,\"b\":\"x\"}", "{\"a\":1,\"b\":\"x\",\"c\":true}", "{\"b\":\"x\",\"c\":false}",
            "{}", "{\"a\":1}", "{\"b\":\"x\",\"d\":1}", "{\"b\":1}", "{ \"b\" : \"x\" }", "{\n  \"a\": 1,\n  \"b\": \"x\"\n}");
    }

    [Fact]
    public void AdditionalPropertiesDefaultAndSchema()
    {
        AgreesWithValidator("""{"type": "object", "properties": {"a": {"type": "integer"}}}""",
            "{\"a\":1,\"z\":[1,{\"q\":null}]}", "{\"z\":\"y\"}", "{\"a\":\"no\"}", "{\"ab\":\"yes\"}", "{\"\":1}");
        AgreesWithValidator("""{"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": {"type": "string"}}""",
            "{\"a\":1,\"b\":\"x\"}", "{\"b\":\"x\",\"c\":\"y\"}", "{\"b\":2}", "{\"a\":\"x\"}");
        // strict: no additional properties unless the schema says so
        var strict = Compile("""{"type": "object", "properties": {"a": {"type": "integer"}}}""", strict: true);
        Assert.True(GrammarTestVocab.AcceptsText(strict, "{\"a\":1}"));
        Assert.False(GrammarTestVocab.AcceptsText(strict, "{\"a\":1,\"b\":2}"));
    }

    [Fact]
    public void ArraysItemsPrefixItemsAndCounts()
    {
        AgreesWithValidator("""{"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3}""",
            "[]", "[1]", "[1,2,3]", "[1,2,3,4]", "[1,\"a\"]", "[ 1 , 2 ]");
        AgreesWithValidator("""{"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false}""",
            "[]", "[\"a\"]", "[\"a\",1]", "[\"a\",1,2]", "[1]");
        AgreesWithValidator("""{"$schema": "http://json-schema.org/draft-07/schema#", "type": "array", "items": [{"type": "string"}], "additionalItems": {"type": "boolean"}, "minItems": 2}""",
            "[\"a\"]", "[\"a\",true]", "[\"a\",true,false]", "[\"a\",1]");
    }

    [Fact]
    public void EnumConstAndTypeFilter()
    {
        AgreesWithValidator("""{"enum": ["a", 1, null, {"k": [true]}, "q\"uote"]}""",
            "\"a\"", "1", "null", "{\"k\":[true]}", "\"q\\\"uote\"", "\"b\"", "2", "true");
        AgreesWithValidator("""{"type": "string", "enum": ["a", 1]}""", "\"a\"", "1");
        AgreesWithValidator("""{"const": {"x": 1}}""", "{\"x\":1}", "{\"x\":2}");
    }

    [Fact]
    public void RefsDefsAndRecursion()
    {
        const string schema = """
            {"$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"}, "next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]}},
              "required": ["v", "next"], "additionalProperties": false}}, "$ref": "#/$defs/node"}
            """;
        AgreesWithValidator(schema, "{\"v\":1,\"next\":null}", "{\"v\":1,\"next\":{\"v\":2,\"next\":{\"v\":3,\"next\":null}}}", "{\"v\":1,\"next\":{\"v\":2}}");
        AgreesWithValidator("""{"$schema": "http://json-schema.org/draft-07/schema#", "definitions": {"a/b": {"type": "integer"}}, "type": "array", "items": {"$ref": "#/definitions/a~1b"}}""", "[1,2]", "[\"x\"]");
    }

    [Fact]
    public void AnyOfOneOfAllOf()
    {
        AgreesWithValidator("""{"anyOf": [{"type": "integer", "minimum": 5}, {"type": "string", "maxLength": 2}]}""",
            "5", "4", "\"ab\"", "\"abc\"", "null");
        AgreesWithValidator("""{"oneOf": [{"type": "object", "properties": {"kind": {"const": "a"}, "x": {"type": "integer"}}, "required": ["kind"]}, {"type": "object", "properties": {"kind": {"const": "b"}}, "required": ["kind"]}]}""",
            "{\"kind\":\"a\",\"x\":1}", "{\"kind\":\"b\"}", "{\"kind\":\"c\"}", "{\"kind\":\"a\",\"x\":\"s\"}");
        AgreesWithValidator("""{"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}, {"properties": {"b": {"type": "string"}}, "required": ["b"]}, {"properties": {"a": {"minimum": 0}}}]}""",
            "{\"a\":1,\"b\":\"x\"}", "{\"a\":-1,\"b\":\"x\"}", "{\"a\":1}", "{\"b\":\"x\"}");
        var e = Assert.Throws<UnsupportedSchemaException>(() => JsonSchemaCompiler.Compile("""{"oneOf": [{"type": "integer"}, {"type": "number"}]}"""));
        Assert.Equal("oneOf", e.Keyword);
    }

    [Fact]
    public void StringLengthsPatternsAndFormats()
    {
        AgreesWithValidator("""{"type": "string", "minLength": 2, "maxLength": 3}""", "\"a\"", "\"ab\"", "\"a\u00e9\U0001F600\"", "\"abcd\"", "\"\\n\\t\"");
        AgreesWithValidator("""{"type": "string", "pattern": "^[a-z]+-\\d{2,3}$"}""", "\"ab-12\"", "\"ab-1\"", "\"x-123\"", "\"X-12\"", "\"ab-1234\"");
        AgreesWithValidator("""{"type": "string", "pattern": "ab|c.d"}""", "\"xaby\"", "\"cxd\"", "\"c\\nd\"", "\"zz\"", "\"\\\"ab\"");
        AgreesWithValidator("""{"type": "string", "pattern": "^(?:[A-Z]{2}|\\w\\s\\S)$"}""", "\"AB\"", "\"a b\"", "\"a  \"", "\"ABC\"");
        AgreesWithValidator("""{"type": "string", "format": "date"}""", "\"2024-02-29\"", "\"2023-02-29\"", "\"2000-02-29\"", "\"1900-02-29\"", "\"2024-04-31\"", "\"2024-13-01\"", "\"2024-1-01\"");
        AgreesWithValidator("""{"type": "string", "format": "date-time"}""", "\"2024-05-06T07:08:09Z\"", "\"2024-05-06T07:08:09.123+02:00\"", "\"2024-05-06 07:08:09Z\"", "\"2024-05-06T24:00:00Z\"");
        AgreesWithValidator("""{"type": "string", "format": "uuid"}""", "\"123e4567-e89b-12d3-a456-426614174000\"", "\"123e4567e89b12d3a456426614174000\"");
        AgreesWithValidator("""{"type": "string", "format": "ipv4"}""", "\"192.168.0.1\"", "\"256.1.1.1\"", "\"01.1.1.1\"", "\"1.1.1\"");
        AgreesWithValidator("""{"type": "string", "format": "ipv6"}""", "\"::1\"", "\"2001:db8::8a2e:370:7334\"", "\"1:2:3:4:5:6:7:8\"", "\"1:2:3:4:5:6:7:8:9\"", "\"::ffff:192.168.1.1\"", "\"1::2::3\"");
        AgreesWithValidator("""{"type": "string", "format": "hostname"}""", "\"example.com\"", "\"a-b.c\"", "\"-ab.com\"", "\"ab_c.com\"");
        AgreesWithValidator("""{"type": "string", "format": "email"}""", "\"joe.bloggs@example.com\"", "\"joe@\"", "\"@x.com\"", "\"a b@x.com\"");
        AgreesWithValidator("""{"type": "string", "format": "uri"}""", "\"https://example.com/a?b=c#d\"", "\"urn:isbn:0451450523\"", "\"no scheme\"", "\"/relative/path\"");
    }

    [Fact]
    public void IntegerRangesAreExact()
    {
        long[] bounds = [-1001, -100, -99, -10, -1, 0, 1, 9, 10, 11, 99, 100, 101, 199, 250, 999, 1000, 12345];
        var rng = new Random(5);
        for (int trial = 0; trial < 40; trial++)
        {
            long? lo = rng.Next(5) == 0 ? null : bounds[rng.Next(bounds.Length)];
            long? hi = rng.Next(5) == 0 ? null : bounds[rng.Next(bounds.Length)];
            bool exLo = rng.Next(3) == 0, exHi = rng.Next(3) == 0;
            string schema = "{\"type\":\"integer\"" + (lo is null ? "" : exLo ? $",\"exclusiveMinimum\":{lo}" : $",\"minimum\":{lo}")
                + (hi is null ? "" : exHi ? $",\"exclusiveMaximum\":{hi}" : $",\"maximum\":{hi}") + "}";
            long effLo = lo is null ? long.MinValue : exLo ? lo.Value + 1 : lo.Value, effHi = hi is null ? long.MaxValue : exHi ? hi.Value - 1 : hi.Value;
            if (effLo > effHi)
            {
                Assert.Throws<GrammarException>(() => Compile(schema)); // nothing to generate
                continue;
            }
            var g = Compile(schema);
            for (long x = -1100; x <= 1100; x += x is > -120 and < 120 ? 1 : 7)
            {
                bool expected = (lo is null || (exLo ? x > lo : x >= lo)) && (hi is null || (exHi ? x < hi : x <= hi));
                Assert.True(expected == GrammarTestVocab.AcceptsText(g, x.ToString(CultureInfo.InvariantCulture)), $"{schema}: {x}");
            }
            Assert.False(GrammarTestVocab.AcceptsText(g, "007"));
        }
        // the digit bound: 16 integer digits at most
        var any = Compile("""{"type": "integer"}""");
        Assert.True(GrammarTestVocab.AcceptsText(any, "1234567890123456"));
        Assert.False(GrammarTestVocab.AcceptsText(any, "12345678901234567"));
    }

    [Fact]
    public void NumberRangesAreExact()
    {
        string[] texts = ["0", "-0", "0.0", "0.5", "1", "1.0", "1.25", "2", "9.999", "10", "10.0", "10.01", "-0.5", "-1", "-1.5", "-10", "-10.5", "100", "1e1"];
        foreach (string bounds in new[] { "\"minimum\":0", "\"exclusiveMinimum\":0", "\"minimum\":1,\"maximum\":10", "\"exclusiveMinimum\":-1,\"exclusiveMaximum\":10",
                     "\"maximum\":-1", "\"minimum\":-10,\"exclusiveMaximum\":0" })
            AgreesWithValidator("{\"type\":\"number\"," + bounds + "}", texts.Where(t => !t.Contains('e')).Select(t => t).ToArray());
        Assert.Throws<UnsupportedSchemaException>(() => JsonSchemaCompiler.Compile("""{"type": "number", "minimum": 0.5}"""));
    }

    [Theory]
    [InlineData("""{"not": {"minLength": 2}}""", "not")]
    [InlineData("""{"type": "object", "patternProperties": {"^x": {}}}""", "patternProperties")]
    [InlineData("""{"if": {"type": "string"}, "then": {"minLength": 1}}""", "if")]
    [InlineData("""{"type": "string", "format": "iri-reference"}""", "format")]
    [InlineData("""{"type": "array", "uniqueItems": true}""", "uniqueItems")]
    [InlineData("""{"type": "integer", "multipleOf": 3}""", "multipleOf")]
    [InlineData("""{"$ref": "other.json#/a"}""", "$ref")]
    [InlineData("""{"type": "string", "pattern": "(a)\\1"}""", "pattern")]
    [InlineData("""{"type": "string", "pattern": "^a+$", "maxLength": 3}""", "pattern")]
    [InlineData("""{"type": "object", "minProperties": 2}""", "minProperties")]
    [InlineData("""{"enum": ["a", "bb"], "minLength": 2}""", "minLength")]
    public void UnsupportedKeywordsAreRefusedByName(string schema, string keyword)
    {
        var e = Assert.Throws<UnsupportedSchemaException>(() => JsonSchemaCompiler.Compile(schema));
        Assert.Equal(keyword, e.Keyword);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void NotOfTypesMinPropertiesOneAndUnknownFormats()
    {
        AgreesWithValidator("""{"type": ["string", "integer", "null"], "not": {"type": "null"}}""", "\"a\"", "1", "null");
        AgreesWithValidator("""{"type": "object", "properties": {"a": {"type": "integer"}, "b": {"not": {}}}, "minProperties": 1}""",
            "{}", "{\"a\":1}", "{\"b\":1}", "{\"c\":true}", "{\"a\":1,\"c\":2}");
        AgreesWithValidator("""{"type": "array", "items": {"type": "string", "pattern": "^(ab)+c?$"}}""", "[\"abab\"]", "[\"ababc\"]", "[\"abc c\"]");
        // a format JSON Schema does not define is an annotation; a defined one without a grammar is refused
        var g = Compile("""{"type": "string", "format": "color"}""");
        Assert.True(GrammarTestVocab.AcceptsText(g, "\"anything\""));
        Assert.Equal("format", Assert.Throws<UnsupportedSchemaException>(() => JsonSchemaCompiler.Compile("""{"type": "string", "format": "uri-reference"}""")).Keyword);
        Assert.Equal("not", Assert.Throws<UnsupportedSchemaException>(() => JsonSchemaCompiler.Compile("""{"not": {"enum": [1]}}""")).Keyword);
    }

    [Fact]
    public void AnnotationsAreIgnored()
    {
        var g = Compile("""{"title": "t", "description": "d", "examples": [1], "default": 2, "$comment": "c", "$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "https://x/y", "x-extra": {"not": 1}, "type": "integer"}""");
        Assert.True(GrammarTestVocab.AcceptsText(g, "3"));
    }

    [Fact]
    public void BadSchemasGiveOneLineErrors()
    {
        Assert.Throws<GrammarException>(() => JsonSchemaCompiler.Compile("{not json"));
        Assert.Throws<GrammarException>(() => JsonSchemaCompiler.Compile("""{"type": "strin"}"""));
        Assert.Throws<GrammarException>(() => JsonSchemaCompiler.Compile("""{"$ref": "#/nowhere"}"""));
        Assert.Throws<GrammarException>(() => JsonSchemaCompiler.Compile("""{"type": "string", "maxLength": 1, "minLength": 3, "x": 1}""").ToString()
            is var _ ? CompiledGrammar.Create(JsonSchemaCompiler.Compile("""{"type": "string", "maxLength": 1, "minLength": 3}"""), GrammarTestVocab.Tiny) : null);
    }

    [Theory]
    [InlineData("""{"type": "string", "type": "integer"}""", "Duplicate")]
    [InlineData("""{"properties": {"a": {"type": "string"}, "a": {"type": "integer"}}}""", "Duplicate")]
    [InlineData("""{"enum": ["\ud800"]}""", "surrogate")]
    [InlineData("""{"properties": {"x\udc00": {"type": "string"}}}""", "surrogate")]
    public void JsonThatNodesRefuseIsAGrammarError(string schema, string said)
    {
        // found by fuzzing (fuzz/crashes/json-schema): repeated member names were an ArgumentException and escaped
        // lone surrogates an InvalidOperationException from deep in the compiler, a 500 through the server
        var e = Assert.Throws<GrammarException>(() => JsonSchemaCompiler.Compile(schema));
        Assert.Contains(said, e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void PrintedGbnfParsesToAGrammarAcceptingTheSameTexts()
    {
        const string schema = """
            {"type": "object", "properties": {"id": {"type": "string", "format": "uuid"}, "n": {"type": "integer", "minimum": -5, "maximum": 120},
             "tags": {"type": "array", "items": {"enum": ["a", "b\"c"]}, "maxItems": 2}, "s": {"type": "string", "pattern": "^x\\d+$"}},
             "required": ["id", "n"]}
            """;
        var def = JsonSchemaCompiler.Compile(schema);
        string gbnf = def.ToGbnf();
        var direct = CompiledGrammar.Create(def, GrammarTestVocab.Tiny);
        var reparsed = GrammarTestVocab.Compile(gbnf, GrammarTestVocab.Tiny);
        string[] texts = ["{\"id\":\"123e4567-e89b-12d3-a456-426614174000\",\"n\":7}", "{\"id\":\"123e4567-e89b-12d3-a456-426614174000\",\"n\":121}",
            "{\"id\":\"123e4567-e89b-12d3-a456-426614174000\",\"n\":-5,\"tags\":[\"b\\\"c\",\"a\"],\"s\":\"x12\",\"q\":{}}", "{\"n\":7}"];
        foreach (string t in texts) Assert.Equal(GrammarTestVocab.AcceptsText(direct, t), GrammarTestVocab.AcceptsText(reparsed, t));
        Assert.True(GrammarTestVocab.AcceptsText(direct, texts[0]));
    }
}
