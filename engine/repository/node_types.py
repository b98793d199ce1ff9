"""Which tree-sitter node types the header walk treats as what, per grammar: imports,
declarations with signatures, containers whose members it lists, bodies it leaves out. Data
only: supporting another language is adding its node types here."""

from __future__ import annotations

PYTHON_BLOCKS = {
    "if_statement",
    "try_statement",
    "else_clause",
    "except_clause",
    "elif_clause",
    "finally_clause",
    "block",
}

# Per language: node types copied whole (imports and short declarations), node types shown by
# signature (text up to the body), and containers whose members are listed by signature too.
IMPORTS = {
    "python": {"import_statement", "import_from_statement", "future_import_statement"},
    "javascript": {"import_statement"},
    "typescript": {"import_statement"},
    "tsx": {"import_statement"},
    "go": {"package_clause", "import_declaration"},
    "rust": {"use_declaration", "mod_item", "extern_crate_declaration"},
    "java": {"package_declaration", "import_declaration"},
    "c": {"preproc_include"},
    "cpp": {"preproc_include", "using_declaration"},
}
SIGNATURES = {
    "python": {"function_definition"},
    "javascript": {"function_declaration", "generator_function_declaration"},
    "typescript": {"function_declaration", "function_signature", "generator_function_declaration"},
    "tsx": {"function_declaration", "function_signature", "generator_function_declaration"},
    "go": {"function_declaration", "method_declaration"},
    "rust": {"function_item", "function_signature_item"},
    "java": {"method_declaration", "constructor_declaration"},
    "c": {"function_definition"},
    "cpp": {"function_definition"},
}
CONTAINERS = {
    "python": {"class_definition"},
    "javascript": {"class_declaration"},
    # `namespace errorUtil { export type ErrMessage = ... }`: its exports are its members.
    "typescript": {
        "class_declaration",
        "abstract_class_declaration",
        "interface_declaration",
        "internal_module",
    },
    "tsx": {
        "class_declaration",
        "abstract_class_declaration",
        "interface_declaration",
        "internal_module",
    },
    "go": set(),
    "rust": {"impl_item", "trait_item"},
    "java": {
        "class_declaration",
        "interface_declaration",
        "enum_declaration",
        "record_declaration",
    },
    "c": set(),
    "cpp": {"class_specifier", "struct_specifier"},
}
# C and C++ blocks whose declarations are the file's own: include guards and other conditional
# blocks, `extern "C" { }`, and C++ namespaces (their names are used as the file's).
TRANSPARENT = {
    "preproc_ifdef",
    "preproc_if",
    "preproc_else",
    "preproc_elif",
    "linkage_specification",
    "namespace_definition",
    "declaration_list",
}
SHORT_DECLARATIONS = {
    "python": {"expression_statement"},
    "javascript": {"lexical_declaration", "variable_declaration"},
    "typescript": {"lexical_declaration", "type_alias_declaration", "enum_declaration"},
    "tsx": {"lexical_declaration", "type_alias_declaration", "enum_declaration"},
    "go": {"type_declaration", "const_declaration", "var_declaration"},
    "rust": {"struct_item", "enum_item", "type_item", "const_item", "static_item"},
    "java": {"field_declaration", "constant_declaration"},
    "c": {
        "declaration",
        "type_definition",
        "struct_specifier",
        "enum_specifier",
        "preproc_def",
        "preproc_function_def",
    },
    "cpp": {"declaration", "type_definition", "alias_declaration", "enum_specifier", "preproc_def"},
}
WRAPPERS = {
    "export_statement",
    "ambient_declaration",  # `declare namespace`, `declare function` (.d.ts files)
    "decorated_definition",
    "expression_statement",
    "template_declaration",
}
MEMBER_SIGNATURES = {
    "function_definition",
    "method_definition",
    "method_signature",
    "method_declaration",
    "constructor_declaration",
    "function_item",
    "function_signature_item",
    "abstract_method_signature",
    "field_declaration",
    "public_field_definition",
    "property_signature",
    "declaration",
    "enum_constant",
    "function_declaration",
    # A namespace's exported constants and types.
    "lexical_declaration",
    "type_alias_declaration",
}
BODY_FIELDS = ("body", "block")
BODY_TYPES = {
    "block",
    "statement_block",
    "class_body",
    "compound_statement",
    "declaration_list",
    "field_declaration_list",
    "interface_body",
    "enum_body",
    "object_type",
    "class_declaration_body",
    "constructor_body",
}
