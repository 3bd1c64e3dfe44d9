#!/usr/bin/env python3
"""Checks HireCJ's Shopify GraphQL against Shopify's own Admin API schema.

Shopify publishes its Admin API schema (an introspection result) in the
`@shopify/dev-mcp` npm package (`dist/data/admin_<version>.json.gz`, ISC
licence). This script checks, against it:

1. every operation the app sends (queries, mutations and the inner queries
   of bulk operations): it must parse and validate (fields, arguments,
   variable types) exactly as Shopify would validate it;
2. every type the development store serves (its SDL): the type must exist
   in Shopify's schema with the same kind; every field and argument it
   serves must exist there with the same type; every enum value it serves
   must be one of Shopify's.

Usage: shopify_schema.py SCHEMA.json[.gz] OPERATIONS.json DEVSTORE.graphql
OPERATIONS.json is a list of {"name": ..., "query": ...}. Exit 1 on any
mismatch, listing them all.
"""

import gzip
import json
import sys

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLUnionType,
    build_client_schema,
    build_schema,
    parse,
    validate,
)


def load_schema(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        data = json.load(f)
    return build_client_schema(data.get("data", data))


def kind(t):
    for k in (
        GraphQLObjectType,
        GraphQLInterfaceType,
        GraphQLUnionType,
        GraphQLEnumType,
        GraphQLInputObjectType,
        GraphQLScalarType,
    ):
        if isinstance(t, k):
            return k.__name__
    return type(t).__name__


def check_operations(shopify, operations):
    problems = []
    for op in operations:
        name, query = op["name"], op["query"]
        try:
            document = parse(query)
        except Exception as e:  # a syntax error is a finding, not a crash
            problems.append(f"operation {name}: does not parse: {e}")
            continue
        for error in validate(shopify, document):
            problems.append(f"operation {name}: {error.message}")
    return problems


def check_devstore(shopify, devstore):
    problems = []
    roots = {
        devstore.query_type.name if devstore.query_type else None: shopify.query_type,
        devstore.mutation_type.name if devstore.mutation_type else None: shopify.mutation_type,
    }
    for name, ours in sorted(devstore.type_map.items()):
        if name.startswith("__") or name is None:
            continue
        theirs = roots.get(name) or shopify.type_map.get(name)
        if theirs is None:
            problems.append(f"type {name}: Shopify has no such type")
            continue
        if kind(ours) != kind(theirs):
            problems.append(f"type {name}: {kind(ours)} here, {kind(theirs)} in Shopify")
            continue
        if isinstance(ours, (GraphQLObjectType, GraphQLInterfaceType)):
            for fname, field in ours.fields.items():
                their_field = theirs.fields.get(fname)
                if their_field is None:
                    problems.append(f"field {name}.{fname}: Shopify has no such field")
                    continue
                if str(field.type) != str(their_field.type):
                    problems.append(
                        f"field {name}.{fname}: {field.type} here, {their_field.type} in Shopify"
                    )
                for aname, arg in field.args.items():
                    their_arg = their_field.args.get(aname)
                    if their_arg is None:
                        problems.append(
                            f"argument {name}.{fname}({aname}:): Shopify has no such argument"
                        )
                    elif str(arg.type) != str(their_arg.type):
                        problems.append(
                            f"argument {name}.{fname}({aname}:): {arg.type} here, "
                            f"{their_arg.type} in Shopify"
                        )
        elif isinstance(ours, GraphQLEnumType):
            for value in ours.values:
                if value not in theirs.values:
                    problems.append(f"enum {name}: Shopify has no value {value}")
        elif isinstance(ours, GraphQLInputObjectType):
            for fname, field in ours.fields.items():
                their_field = theirs.fields.get(fname)
                if their_field is None:
                    problems.append(f"input {name}.{fname}: Shopify has no such field")
                elif str(field.type) != str(their_field.type):
                    problems.append(
                        f"input {name}.{fname}: {field.type} here, {their_field.type} in Shopify"
                    )
        elif isinstance(ours, GraphQLUnionType):
            their_members = {t.name for t in theirs.types}
            for member in ours.types:
                if member.name not in their_members:
                    problems.append(f"union {name}: Shopify's has no member {member.name}")
    return problems


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    shopify = load_schema(argv[1])
    with open(argv[2], encoding="utf-8") as f:
        operations = json.load(f)
    with open(argv[3], encoding="utf-8") as f:
        devstore = build_schema(f.read())
    problems = check_operations(shopify, operations) + check_devstore(shopify, devstore)
    checked_types = sum(1 for n in devstore.type_map if not n.startswith("__"))
    if problems:
        print(f"{len(problems)} differences from Shopify's Admin API schema:")
        for p in problems:
            print(f"  - {p}")
        return 1
    print(
        f"Shopify's Admin API schema: {len(operations)} operations valid; the development "
        f"store's {checked_types} types match"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
