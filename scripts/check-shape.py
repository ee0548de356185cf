#!/usr/bin/env python3
"""Checks the code's shape, as the README promises it: no import cycle among
the modules of any crate, and no non-test function longer than 80 lines.

It reads the Rust sources as text (no build needed): each crate's module tree
from its `mod` declarations, each module's references to other modules of the
same crate (`crate::a::b`, `super::x`, `self::y`), and each function's extent
by brace matching. Test code (`#[cfg(test)]` modules, `tests/`, `benches/`,
the fuzz crate) is left out. Exits 1 with one line per problem.
"""
import os
import re
import sys

MAX_FN_LINES = 80
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def strip_comments_and_strings(text):
    """Blanks comments, string and char literals, keeping line breaks."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + len(m.group(0)))
            j = n if j < 0 else j + len(end)
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i + 4]) or (c == "'" and re.match(r"'\\(x..|u\{[0-9a-fA-F]+\})'", text[i:i + 12])):
            m = re.match(r"'(\\(x..|u\{[0-9a-fA-F]+\}|.)|[^\\'])'", text[i:])
            out.append("' '")
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


def remove_test_modules(text):
    """Blanks `#[cfg(test)]` items (keeping line count)."""
    while True:
        m = re.search(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{", text)
        if not m:
            return text
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        text = text[:m.start()] + "\n" * text.count("\n", m.start(), j) + text[j:]


class Crate:
    def __init__(self, name, root_file):
        self.name = name
        self.modules = {}  # path tuple -> file
        self.texts = {}
        self._walk((), root_file)

    def _walk(self, path, file):
        self.modules[path] = file
        with open(file, encoding="utf-8") as f:
            text = remove_test_modules(strip_comments_and_strings(f.read()))
        self.texts[path] = text
        here = os.path.dirname(file)
        is_dir_owner = os.path.basename(file) in ("mod.rs", "lib.rs", "main.rs")
        base = here if is_dir_owner else os.path.join(here, os.path.splitext(os.path.basename(file))[0])
        for m in re.finditer(r"^\s*(pub(\([^)]*\))?\s+)?mod\s+(\w+)\s*;", text, re.M):
            name = m.group(3)
            for cand in (os.path.join(base, name + ".rs"), os.path.join(base, name, "mod.rs")):
                if os.path.exists(cand):
                    self._walk(path + (name,), cand)
                    break

    def resolve(self, here, segments):
        """The deepest module named by a path starting at `here`."""
        if not segments:
            return None
        if segments[0] == "crate":
            cur, rest = (), segments[1:]
        elif segments[0] in ("super", "self"):
            cur, rest = here, segments
            while rest and rest[0] in ("super", "self"):
                if rest[0] == "super":
                    cur = cur[:-1]
                rest = rest[1:]
        else:
            return None
        for seg in rest:
            if cur + (seg,) in self.modules:
                cur = cur + (seg,)
            else:
                break
        return cur

    def edges(self):
        """Module -> modules it uses. Re-exports (`pub use`) are a facade,
        not a use, so they make no edge."""
        graph = {m: set() for m in self.modules}
        for path, text in self.texts.items():
            text = re.sub(r"\bpub(\([^)]*\))?\s+use\s[^;]*;", "", text)
            for m in re.finditer(r"\b((?:crate|super|self)(?:::\w+)+)", text):
                target = self.resolve(path, m.group(1).split("::"))
                if target is not None and target != path:
                    graph[path].add(target)
            # `use super::{a, b}` / `use crate::{x::Y, z}` groups
            for m in re.finditer(r"\b(crate|super|self)::\{([^}]*)\}", text):
                for item in m.group(2).split(","):
                    item = item.strip().split(" as ")[0]
                    if not item:
                        continue
                    target = self.resolve(path, [m.group(1)] + item.split("::"))
                    if target is not None and target != path:
                        graph[path].add(target)
            # the module's own children, named without a prefix
            for child in (m for m in self.modules if len(m) == len(path) + 1 and m[:-1] == path):
                if re.search(r"(?<![\w:])" + child[-1] + r"::", text):
                    graph[path].add(child)
        return graph


def cycles(graph):
    """Every strongly connected component of more than one module."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def long_functions(file, text):
    lines = text.split("\n")
    found = []
    for m in re.finditer(r"\bfn\s+(\w+)[^;{]*\{", text):
        start = text.count("\n", 0, m.start())
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        end = text.count("\n", 0, j)
        length = end - start + 1
        if length > MAX_FN_LINES:
            found.append(f"{os.path.relpath(file, ROOT)}:{start + 1}: fn {m.group(1)} is {length} lines (at most {MAX_FN_LINES})")
    return found


def crates():
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in ("target", ".git", "fuzz", "tests", "benches", "node_modules")]
        if "Cargo.toml" in filenames:
            for root in ("src/lib.rs", "src/main.rs"):
                path = os.path.join(dirpath, root)
                if os.path.exists(path):
                    yield Crate(os.path.relpath(dirpath, ROOT) + ":" + root, path)


def main():
    problems = []
    for crate in crates():
        for comp in cycles(crate.edges()):
            names = sorted("::".join(p) or "(root)" for p in comp)
            problems.append(f"{crate.name}: import cycle among modules {', '.join(names)}")
        for path, file in crate.modules.items():
            problems.extend(long_functions(file, crate.texts[path]))
    for p in sorted(set(problems)):
        print(p)
    if problems:
        sys.exit(1)
    print("shape ok: no module import cycles, no function over", MAX_FN_LINES, "lines")


if __name__ == "__main__":
    main()
