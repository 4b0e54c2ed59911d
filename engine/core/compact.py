"""The compact forms of a definition, and their expansion into the full form.

Process owners write the same few shapes over and over: a payload of two or three fields
takes a five-line JSON Schema, a transition that records fields takes an ``actions`` list of
one ``set``, a parameter spells ``type:`` and ``default:`` on two lines. The compact forms say
each of these once (docs/definitions.md, "Compact forms"):

- ``payload: {at!: datetime, note: text, via: [phone, video]}`` on a transition, and
  ``data: {...}`` at the top, in the *field language* below, instead of ``payload_schema`` /
  ``data_schema``;
- ``set: {field: expr, ...}`` on a transition: the first action, before ``actions``;
- ``<type>: <default>`` on a parameter (``duration: 1h``) instead of ``type`` + ``default``;
- ``state <name>: <title>`` and ``sla <name>: <title>`` heads instead of ``name`` + ``title``;
- ``sla_defaults: {on_breach: ...}`` once instead of the same key on every SLA;
- a field's type (and description) once, in its ``fields`` entry, instead of wherever data
  and payloads declare it: they name it without a type (``payload: {cause!, plan!}``).

Everything downstream (the semantic checks, the machine, the diff, the API's ``document``)
sees the full form only: :func:`expand` is the one place that knows the compact forms, and
it produces exactly the document a process owner would have written out by hand, so a
rewrite into compact forms changes nothing a case can observe. Problems found in the full
form are reported at the element the author wrote (:meth:`Expansion.written_path`).

The field language. A field is optional unless its name ends in ``!`` (required), as in
JSON Schema, where only the fields listed as required are. Its value is a type word
(:data:`TYPE_WORDS`; ``integer``/``number`` may add ``>= N`` or ``N..M``), a list of the values
allowed (an ``enum``), a list holding one mapping of fields (a list of such records), or a
mapping, which is a JSON Schema taken as written (for a description, a ``const``, ...). Or
nothing (``cause!`` in ``{cause!, plan!}``, which YAML reads as ``cause!: null``): the type
the ``fields`` glossary declares for the name (:class:`FieldTypes`), or the engine's for a
field the engine writes. A type written where the field is named wins.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.core.engine_fields import ENGINE_FIELDS
from engine.errors import Problem, ProblemList, written

# Each word and the JSON Schema it stands for; the table in docs/definitions.md matches it.
TYPE_WORDS: dict[str, dict[str, Any]] = {
    "text": {"type": "string", "minLength": 1},
    "string": {"type": "string"},
    "datetime": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
    "boolean": {"type": "boolean"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
}
PARAMETER_TYPES = ("integer", "number", "string", "boolean", "duration", "calendar")

_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_NUMBER = r"-?\d+(?:\.\d+)?"
_BOUNDED = re.compile(
    rf"^(integer|number)\s*(?:>=\s*(?P<min>{_NUMBER})|(?P<low>{_NUMBER})\s*\.\.\s*(?P<high>{_NUMBER}))$"
)
_TYPE_HINT = (
    "Write a type word ({words}; integer and number may add '>= 0' or '1..3'), a list of the "
    "allowed values ([phone, video]), a list holding one mapping of fields for a list of "
    "records ([{{part: text}}]), or a JSON Schema mapping ({{type: string, maxLength: 20}}). "
    'docs/definitions.md, "Compact forms".'
).format(words=", ".join(TYPE_WORDS))


@dataclass
class Expansion:
    """A document in the full form, the problems of its compact forms, and where each
    expanded element is written."""

    document: Any
    problems: ProblemList = field(default_factory=ProblemList)
    # Two stages of (path in the full form, path before this stage); longest prefix wins.
    # Stage 0 numbers the transitions (branches become transitions), stage 1 writes out
    # on <trigger>, payload, set, data and parameter types on the numbered transitions.
    _stages: tuple[list[tuple[str, str]], list[tuple[str, str]]] = field(
        default_factory=lambda: ([], [])
    )

    def written_path(self, path: str) -> str:
        """The element path as the author wrote it, for a path of the full form."""
        for stage in reversed(self._stages):
            path = _mapped(stage, path)
        return path

    def written_problem(self, problem: Problem) -> Problem:
        return dataclasses.replace(problem, path=self.written_path(problem.path))

    def _numbered(self, expanded: str, as_written: str) -> None:
        self._stages[0].append((expanded, as_written))

    def _moved(self, expanded: str, as_written: str) -> None:
        self._stages[1].append((expanded, as_written))


def _mapped(origins: list[tuple[str, str]], path: str) -> str:
    best: tuple[str, str] | None = None
    for expanded, as_written in origins:
        if _is_prefix(expanded, path) and (best is None or len(expanded) > len(best[0])):
            best = (expanded, as_written)
    return path if best is None else best[1] + path[len(best[0]) :]


def _is_prefix(prefix: str, path: str) -> bool:
    return path.startswith(prefix) and path[len(prefix) : len(prefix) + 1] in ("", ".", "[")


def expand(document: Any) -> Expansion:
    """``document`` with every compact form written out; a full-form document comes back
    equal to itself. Never raises: a compact form it cannot read is left as written and
    reported (the structural pass reports a wrong shape)."""
    if not isinstance(document, dict):
        return Expansion(document)
    # Copies of the mappings it rewrites only (never a deep copy: a document may nest deep
    # enough for validation to refuse it, and copying it first would recurse past Python's
    # limit); the values inside are shared, and neither document is changed afterwards.
    doc = dict(document)
    result = Expansion(doc)
    if isinstance(doc.get("parameters"), dict):
        doc["parameters"] = dict(doc["parameters"])
    declared = FieldTypes.of(doc.get("fields"), result.problems)
    _expand_data(doc, result, declared)
    _expand_parameters(doc, result)
    states = doc.get("states")
    if isinstance(states, list):
        doc["states"] = states = [dict(s) if isinstance(s, dict) else s for s in states]
        for index, state in enumerate(states):
            if isinstance(state, dict):
                _expand_state(state, f"states[{index}]", result)
    _expand_slas(doc, result)
    transitions = doc.get("transitions")
    if isinstance(transitions, list):
        doc["transitions"] = _branched(transitions, result)
        # Found on the numbered transitions: reported where written, once for a payload that
        # branches share.
        found = ProblemList()
        for index, transition in enumerate(doc["transitions"]):
            if isinstance(transition, dict):
                _expand_transition(transition, f"transitions[{index}]", result, found, declared)
        _report_once(found, result)
    _expand_glossary(doc, declared, result.problems)
    return result


def _report_once(found: ProblemList, result: Expansion) -> None:
    seen = {(p.path, p.code) for p in result.problems.items}
    for problem in found.items:
        placed = dataclasses.replace(problem, path=_mapped(result._stages[0], problem.path))
        if (placed.path, placed.code) not in seen:
            seen.add((placed.path, placed.code))
            result.problems.items.append(placed)


def full_form(document: Any) -> Any:
    """The document in the full form (problems of its compact forms left to validation)."""
    return expand(document).document


# --- the field language ------------------------------------------------------------------------


def fields_schema(
    fields: Any,
    path: str,
    out: ProblemList,
    declared: FieldTypes | None = None,
    *,
    in_data: bool = False,
) -> dict[str, Any]:
    """The JSON Schema of an object with ``fields`` written in the field language; a field
    written without a type takes the one ``declared`` gives its name (with its description
    for the case's own fields, ``in_data``)."""
    if not isinstance(fields, Mapping):
        out.error(
            path,
            "compact-fields-not-mapping",
            f"Fields are written as a mapping of name to type; got {written(fields)}.",
            'For example {at!: datetime, note: text}. docs/definitions.md, "Compact forms".',
        )
        return {"type": "object"}
    properties: dict[str, Any] = {}
    required: list[str] = []
    for key, value in fields.items():
        name = str(key)
        required_mark = name.endswith("!")
        bare = name[:-1] if required_mark else name
        where = f"{path}.{name}"
        if not _FIELD_NAME.match(bare):
            out.error(
                where,
                "compact-field-name",
                f"Field name {name!r} is not a name: lowercase letters, digits and _, "
                "starting with a letter, ending in ! when the field is required.",
                "Rename it, e.g. serial_no or at! (YAML reads ? in {...} as a key marker).",
            )
            continue
        if value is None:
            properties[bare] = _declared_type(bare, where, out, declared, in_data=in_data)
        else:
            properties[bare] = field_schema(value, where, out, declared)
        if required_mark:
            required.append(bare)
    schema: dict[str, Any] = {"type": "object"}
    if required:
        schema["required"] = required
    schema["properties"] = properties
    return schema


def field_schema(
    value: Any, path: str, out: ProblemList, declared: FieldTypes | None = None
) -> Any:
    """The JSON Schema of one field written in the field language (the fields of a list of
    records may be written without a type, as ``declared`` gives them)."""
    if isinstance(value, Mapping):
        return dict(value)  # a JSON Schema as written (checked as one by the validator)
    if isinstance(value, list):
        if len(value) == 1 and isinstance(value[0], Mapping):
            return {
                "type": "array",
                "items": fields_schema(value[0], f"{path}[0]", out, declared),
            }
        if value and not any(isinstance(v, (Mapping, list)) for v in value):
            return {"enum": list(value)}
        out.error(
            path,
            "compact-type-unknown",
            f"A list field type is either the allowed values or one mapping of fields; got "
            f"{written(value)}.",
            _TYPE_HINT,
        )
        return {}
    if isinstance(value, str):
        word = value.strip()
        if word in TYPE_WORDS:
            return dict(TYPE_WORDS[word])
        bounded = _BOUNDED.match(word)
        if bounded and bounded["low"] and float(bounded["low"]) > float(bounded["high"]):
            out.error(
                path,
                "compact-range-empty",
                f"The range {value!r} holds no value: {bounded['low']} is above {bounded['high']}.",
                "Write the low end first, e.g. integer 1..3.",
            )
            return {}
        if bounded:
            return _bounded(bounded)
        close = difflib.get_close_matches(word, list(TYPE_WORDS), n=1)
        did_you_mean = f"Did you mean {close[0]!r}? " if close else ""
        out.error(
            path,
            "compact-type-unknown",
            f"Unknown field type {value!r}.",
            did_you_mean + _TYPE_HINT,
        )
        return {}
    out.error(
        path,
        "compact-type-unknown",
        f"A field type is a word, a list or a mapping; got {written(value)}.",
        _TYPE_HINT,
    )
    return {}


def _declared_type(
    name: str, path: str, out: ProblemList, declared: FieldTypes | None, *, in_data: bool
) -> Any:
    schema = declared.schema(name, in_data=in_data) if declared is not None else None
    if schema is not None:
        return schema
    known = declared.names() if declared is not None else []
    close = difflib.get_close_matches(name, known, n=1)
    did_you_mean = f"Did you mean {close[0]!r}? " if close else ""
    out.error(
        path,
        "compact-field-untyped",
        f"Field {name!r} is written without a type, and fields declares none for it.",
        did_you_mean + f"Give it a type here ({name}: text), or once in fields "
        f"({name}: {{en: ..., zh: ..., type: text}}) for every place that names it. "
        'docs/definitions.md, "Field labels".',
    )
    return {}


def _bounded(match: re.Match[str]) -> dict[str, Any]:
    kind = match.group(1)
    convert = int if kind == "integer" else _number
    schema: dict[str, Any] = {"type": kind}
    if match.group("min") is not None:
        schema["minimum"] = convert(match.group("min"))
    else:
        schema["minimum"] = convert(match.group("low"))
        schema["maximum"] = convert(match.group("high"))
    return schema


def _number(text: str) -> int | float:
    return int(text) if re.fullmatch(r"-?\d+", text) else float(text)


# --- the types the glossary declares ----------------------------------------------------------


class FieldTypes:
    """What a field written without a type (``{cause!, plan!}``) stands for: the ``type`` its
    ``fields`` entry declares, or the keys of its ``values`` when it declares none, or, for a
    field the engine writes (:data:`~engine.core.engine_fields.ENGINE_FIELDS`), the engine's
    type. Each entry's type is compiled once, so a mistake in it is reported once, at
    ``fields.<name>.type``, however many places name the field."""

    def __init__(self, entries: Mapping[str, Any], problems: ProblemList) -> None:
        self._entries = entries
        self._problems = problems
        self._compiled: dict[str, Any] = {}
        self._compiling: set[str] = set()
        self.described: set[str] = set()  # fields whose description a data field took

    @classmethod
    def of(cls, glossary: Any, problems: ProblemList) -> FieldTypes:
        entries = (
            {str(k): v for k, v in glossary.items() if isinstance(v, Mapping)}
            if isinstance(glossary, Mapping)
            else {}
        )
        declared = cls(entries, problems)
        for name in entries:
            declared._type(name)
        return declared

    def names(self) -> list[str]:
        return sorted({*ENGINE_FIELDS, *(n for n in self._entries if self._type(n) is not None)})

    def schema(self, name: str, *, in_data: bool) -> Any:
        """A fresh copy of the JSON Schema for ``name``, or None when nothing declares it."""
        schema = self._type(name)
        if schema is None:
            return None
        schema = copy.deepcopy(schema)
        description = self.description(name)
        if in_data and description is not None and isinstance(schema, dict):
            schema["description"] = description
            self.described.add(name)
        return schema

    def description(self, name: str) -> str | None:
        text = self._entries.get(name, {}).get("description")
        return text if isinstance(text, str) else None

    def _type(self, name: str) -> Any:
        if name in self._compiled:
            return self._compiled[name]
        where = f"fields.{name}.type"
        if name in self._compiling:
            self._problems.error(
                where,
                "compact-field-cycle",
                f"The type of {name!r} names {name!r} itself, through the fields it holds.",
                "Give the inner field its own type where it is written (part: text).",
            )
            return {}
        entry = self._entries.get(name, {})
        engine = ENGINE_FIELDS.get(name)
        if engine is not None and "type" in entry:
            self._problems.error(
                where,
                "engine-field-typed",
                f"{name!r} is written by the engine, which gives it the type {engine.type}.",
                "Remove type; the entry may still relabel the field (en, zh).",
            )
        self._compiling.add(name)
        if engine is not None:
            schema: Any = field_schema(engine.type, where, self._problems)
        elif "type" in entry:
            schema = field_schema(entry["type"], where, self._problems, self)
        elif isinstance(entry.get("values"), Mapping) and entry["values"]:
            schema = {"enum": list(entry["values"])}
        else:
            schema = None
        self._compiling.discard(name)
        self._compiled[name] = schema
        return schema


def _expand_glossary(doc: dict[str, Any], declared: FieldTypes, problems: ProblemList) -> None:
    """The glossary in the full form: labels only (each type and description now stands in
    the schemas), and the engine's label for each engine field the definition declares and
    does not relabel."""
    glossary = doc.get("fields")
    if glossary is not None and not isinstance(glossary, dict):
        return  # the structural pass reports it
    for name, entry in (glossary or {}).items():
        text = entry.get("description") if isinstance(entry, Mapping) else None
        if isinstance(text, str) and name not in declared.described:
            problems.warning(
                f"fields.{name}.description",
                "field-description-unused",
                f"The description of {name!r} is written into the case data's schema, but data "
                f"does not name {name!r} without a type, so it is kept nowhere.",
                f"Write {name} in data without a type, or move the description into the "
                "transition's description.",
            )
    labels = {
        name: {k: v for k, v in entry.items() if k not in ("type", "description")}
        if isinstance(entry, Mapping)
        else entry
        for name, entry in (glossary or {}).items()
    }
    for name in _declared_names(doc):
        engine = ENGINE_FIELDS.get(name)
        if engine is not None and name not in labels:
            labels[name] = {"en": engine.label.en, "zh": engine.label.zh}
    if labels or glossary is not None:
        doc["fields"] = labels


def _declared_names(doc: Mapping[str, Any]) -> list[str]:
    """The field names the data and the payloads declare (the full form's)."""
    schemas = [doc.get("data_schema")] + [
        t.get("payload_schema") for t in doc.get("transitions") or () if isinstance(t, Mapping)
    ]
    names: list[str] = []
    for schema in schemas:
        properties = schema.get("properties") if isinstance(schema, Mapping) else None
        if isinstance(properties, Mapping):
            names.extend(str(n) for n in properties if n not in names)
    return names


# --- the compact forms ---------------------------------------------------------------------------


def _expand_data(doc: dict[str, Any], result: Expansion, declared: FieldTypes) -> None:
    if "data" not in doc:
        return
    if "data_schema" in doc:
        result.problems.error(
            "data",
            "compact-and-full",
            "Both data and data_schema are given; they say the same thing twice.",
            "Keep one: data (the compact fields) or data_schema (a JSON Schema).",
        )
        return
    doc["data_schema"] = fields_schema(
        doc.pop("data"), "data", result.problems, declared, in_data=True
    )
    result._moved("data_schema.properties", "data")
    result._moved("data_schema", "data")


def _expand_parameters(doc: dict[str, Any], result: Expansion) -> None:
    parameters = doc.get("parameters")
    if not isinstance(parameters, dict):
        return
    for name, parameter in list(parameters.items()):
        if not isinstance(parameter, dict):
            continue
        path = f"parameters.{name}"
        kinds = [t for t in PARAMETER_TYPES if t in parameter]
        if not kinds:
            if "type" not in parameter or "default" not in parameter:
                result.problems.error(
                    path,
                    "parameter-type-missing",
                    f"Parameter {name!r} has no type and default.",
                    "Write its type with its default, e.g. duration: 1h (or type: duration "
                    "with default: 1h).",
                )
            continue
        if len(kinds) > 1 or "type" in parameter or "default" in parameter:
            result.problems.error(
                path,
                "parameter-type-twice",
                f"Parameter {name!r} gives its type more than once "
                f"({', '.join([*kinds, *(k for k in ('type', 'default') if k in parameter)])}).",
                "Write either one line <type>: <default> (duration: 1h) or type: and default:.",
            )
            # Checked on as its first compact type says, so the one mistake is reported once.
        kind = kinds[0]
        dropped = {*kinds, "type", "default"}
        rest = {k: v for k, v in parameter.items() if k not in dropped}
        parameters[name] = {"type": kind, "default": parameter[kind], **rest}
        result._moved(f"{path}.type", f"{path}.{kind}")
        result._moved(f"{path}.default", f"{path}.{kind}")


def _expand_transition(
    transition: dict[str, Any],
    path: str,
    result: Expansion,
    found: ProblemList,
    declared: FieldTypes,
) -> None:
    """Write out one numbered transition's compact forms; its problems go to ``found``."""
    headers = [key for key in transition if isinstance(key, str) and key.startswith(ON)]
    if headers:
        _expand_on(transition, headers, path, result, found)
    elif "trigger" not in transition or "source" not in transition:
        missing = " and ".join(k for k in ("trigger", "source") if k not in transition)
        found.error(
            path,
            "missing-key",
            f"The transition says no {missing}.",
            "Head it with on <trigger>: <states> -> <dest> (or on <trigger>: <states> for one "
            "that stays), or give trigger: and source:.",
        )
    if "payload" in transition:
        if "payload_schema" in transition:
            found.error(
                f"{path}.payload",
                "compact-and-full",
                "Both payload and payload_schema are given; they say the same thing twice.",
                "Keep one: payload (the compact fields) or payload_schema (a JSON Schema).",
            )
        else:
            payload = transition.pop("payload")
            transition["payload_schema"] = fields_schema(
                payload, f"{path}.payload", found, declared
            )
            result._moved(f"{path}.payload_schema.properties", f"{path}.payload")
            result._moved(f"{path}.payload_schema", f"{path}.payload")
    if "set" in transition:
        recorded = transition.pop("set")
        actions = transition.get("actions", [])
        if not isinstance(actions, list):
            transition["set"] = recorded  # the structural pass reports the actions
            return
        transition["actions"] = [{"set": recorded}, *actions]
        result._moved(f"{path}.actions[0].set", f"{path}.set")
        result._moved(f"{path}.actions[0]", f"{path}.set")
        for index in range(len(actions)):
            result._moved(f"{path}.actions[{index + 1}]", f"{path}.actions[{index}]")


# Keys a branch may not give: they are what its transitions share.
_SHARED_ONLY = ("trigger", "source", "branches")


def _branched(entries: list[Any], result: Expansion) -> list[Any]:
    """One transition per entry, or per branch of an entry with ``branches``, in order: the
    branches of one entry are tried in the order written, as consecutive transitions are."""
    out: list[Any] = []
    for index, entry in enumerate(entries):
        entry_path = f"transitions[{index}]"
        branches = entry.get("branches") if isinstance(entry, dict) else None
        if (
            not branches
            or not isinstance(branches, list)
            or not all(isinstance(b, dict) for b in branches)
        ):
            if len(out) != index:
                result._numbered(f"transitions[{len(out)}]", entry_path)
            # (the structural pass reports branches that are not a list of mappings)
            out.append(dict(entry) if isinstance(entry, dict) else entry)
            continue
        shared = {k: v for k, v in entry.items() if k != "branches"}
        for number, branch in enumerate(branches):
            out.append(
                _branch(
                    shared,
                    branch,
                    expanded_path=f"transitions[{len(out)}]",
                    branch_path=f"{entry_path}.branches[{number}]",
                    entry_path=entry_path,
                    result=result,
                )
            )
    return out


def _branch(
    shared: Mapping[str, Any],
    branch: Mapping[str, Any],
    *,
    expanded_path: str,
    branch_path: str,
    entry_path: str,
    result: Expansion,
) -> dict[str, Any]:
    """The transition one branch stands for: the shared keys, then the branch's own."""
    merged = dict(shared)
    result._numbered(expanded_path, branch_path)
    for key in shared:
        if key not in branch:
            result._numbered(f"{expanded_path}.{key}", f"{entry_path}.{key}")
    for key, value in branch.items():
        if key in _SHARED_ONLY:
            continue  # the structural pass reports it (a branch does not accept the key)
        if key == "set" and isinstance(shared.get("set"), Mapping) and isinstance(value, Mapping):
            for name in (name for name in value if name in shared["set"]):
                result.problems.error(
                    f"{branch_path}.set.{name}",
                    "set-twice",
                    f"Field {name!r} is set both by the transition and by this branch.",
                    "Set it in the branches only, each with its own expression.",
                )
            merged["set"] = {**shared["set"], **value}
            for name in shared["set"]:
                result._numbered(f"{expanded_path}.set.{name}", f"{entry_path}.set.{name}")
            continue
        merged[key] = value
    return merged


# The compact head of a transition says trigger, source and dest in one line:
# ``on dispatch: remote_diagnosis, awaiting_dispatch -> dispatched``; a head without ``->``
# (``on confirm_visit: dispatched``) stays where it is.
ON = "on "
_ON_HEAD = re.compile(r"^on ([a-z][a-z0-9_]{0,62})$")
_STATE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def _expand_on(
    transition: dict[str, Any],
    headers: list[str],
    path: str,
    result: Expansion,
    found: ProblemList,
) -> None:
    head = headers[0]
    where = f"{path}.{head}"
    value = transition[head]
    text = value if isinstance(value, str) else ""
    sources_text, arrow, dest = text.partition("->")
    sources = [n.strip() for n in sources_text.split(",")]
    trigger = _ON_HEAD.match(head)
    problem = ""
    if len(headers) > 1:
        problem = f"The transition has {len(headers)} heads ({', '.join(headers)}); it has one."
    elif trigger is None:
        problem = f"{head!r} is not on <trigger>: the trigger is a lowercase name (on dispatch)."
    elif any(k in transition for k in ("trigger", "source")) or (arrow and "dest" in transition):
        given = [k for k in ("trigger", "source", "dest") if k in transition]
        problem = f"{head!r} says trigger, source and dest, but {', '.join(given)} is given too."
    elif sources_text.strip() != "*" and not all(_STATE.match(n) for n in sources):
        problem = f"{written(value)} is not <states> or <states> -> <dest>."
    elif arrow and not _STATE.match(dest.strip()):
        problem = f"{written(value)} names no destination state after ->."
    if problem:
        found.error(
            where,
            "transition-head-unreadable",
            problem,
            "Write on <trigger>: <state>, <state> -> <dest> (for example on dispatch: "
            "remote_diagnosis -> dispatched), or on <trigger>: <states> for a transition that "
            "stays; '*' for every state that is not final.",
        )
        return
    assert trigger is not None  # checked above
    del transition[head]
    transition["trigger"] = trigger.group(1)
    transition["source"] = (
        "*" if sources_text.strip() == "*" else (sources[0] if len(sources) == 1 else sources)
    )
    if arrow:
        transition["dest"] = dest.strip()
    for key in ("trigger", "source", "dest") if arrow else ("trigger", "source"):
        result._moved(f"{path}.{key}", where)


# The compact head of a state or an SLA says its name and title in one line:
# ``state logged: {en: Logged, zh: 已登记}``, ``sla arrival: {en: Arrival on site, zh: 到场}``.
_HEADS = {kind: re.compile(rf"^{kind} ([a-z][a-z0-9_]{{0,62}})$") for kind in ("state", "sla")}
_HEAD_EXAMPLES = {
    "state": "state on_site: {en: On site, zh: 已到场}",
    "sla": "sla arrival: {en: Arrival on site, zh: 到场}",
}


def _expand_state(state: dict[str, Any], path: str, result: Expansion) -> None:
    _expand_head("state", state, path, result)


def _expand_head(kind: str, element: dict[str, Any], path: str, result: Expansion) -> None:
    """``<kind> <name>: <title>`` written out as ``name`` and ``title``."""
    headers = [key for key in element if isinstance(key, str) and key.startswith(f"{kind} ")]
    example = _HEAD_EXAMPLES[kind]
    if not headers:
        # An SLA's title is optional: only its name is missing without a head.
        needed = ("name", "title") if kind == "state" else ("name",)
        missing = " and ".join(k for k in needed if k not in element)
        if missing:
            result.problems.error(
                path,
                "missing-key",
                f"The {kind} has no {missing}.",
                f"Head it with {kind} <name>: {{en: ..., zh: ...}}, or give name: and title:.",
            )
        return
    head = headers[0]
    name = _HEADS[kind].match(head)
    problem = ""
    if len(headers) > 1:
        problem = f"The {kind} has {len(headers)} heads ({', '.join(headers)}); it has one."
    elif name is None:
        problem = f"{head!r} is not {kind} <name>: the name is lowercase ({example.split(':')[0]})."
    elif "name" in element or "title" in element:
        given = " and ".join(k for k in ("name", "title") if k in element)
        problem = f"{head!r} says the name and title, but {given} is given too."
    if problem:
        result.problems.error(
            f"{path}.{head}",
            f"{kind}-head-unreadable",
            problem,
            f"Write {kind} <name>: {{en: <English title>, zh: <Chinese title>}}, e.g. {example}.",
        )
        return
    assert name is not None  # checked above
    title = element.pop(head)
    rest = dict(element)
    element.clear()
    element.update({"name": name.group(1), "title": title, **rest})
    result._moved(f"{path}.name", f"{path}.{head}")
    result._moved(f"{path}.title", f"{path}.{head}")


# What ``sla_defaults`` may say for every SLA of a definition. An SLA's own value wins; an
# SLA that wants none of a default writes the key as null (``on_breach: null``).
SLA_DEFAULT_KEYS = ("on_breach", "warn_at", "calendar")


def _expand_slas(doc: dict[str, Any], result: Expansion) -> None:
    defaults = doc.pop("sla_defaults", None)
    slas = doc.get("slas")
    if not isinstance(slas, list):
        return
    doc["slas"] = slas = [dict(s) if isinstance(s, dict) else s for s in slas]
    for index, sla in enumerate(slas):
        if not isinstance(sla, dict):
            continue
        path = f"slas[{index}]"
        _expand_head("sla", sla, path, result)
        for key in SLA_DEFAULT_KEYS:
            if key in sla and sla[key] is None:
                del sla[key]  # this SLA opts out of the default
            elif key not in sla and isinstance(defaults, dict) and key in defaults:
                sla[key] = defaults[key]
                result._moved(f"{path}.{key}", f"sla_defaults.{key}")
