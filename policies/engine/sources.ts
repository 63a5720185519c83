/**
 * Turn each input the rules accept into the neutral StackInput: a `pulumi stack export`
 * document, `db-platform synth --json` output, or @pulumi/policy's resources during preview.
 */
import * as policyProxy from "@pulumi/policy/proxy";
import { type PolicyInputResource, SECRET, type StackInput, UNKNOWN } from "./types";

// Exported by @pulumi/policy at runtime, marked internal in its type declarations.
const { UnknownValueError } = policyProxy as unknown as { UnknownValueError: new (...args: never[]) => Error };

const SIG = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e";
const UNKNOWN_SENTINEL = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export class StateFormatError extends Error {}

/** Serialized Pulumi values -> plain JSON: secret envelopes become SECRET, resource references their URN, unknowns UNKNOWN. */
export function normalize(v: unknown): unknown {
  if (v === UNKNOWN_SENTINEL) return UNKNOWN;
  if (Array.isArray(v)) return v.map(normalize);
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (o[SIG] === SECRET_SIG) return SECRET;
    if (o[SIG] === RESOURCE_SIG) return o.urn;
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, normalize(x)]));
  }
  return v;
}

const nameOf = (urn: string) => urn.split("::").pop() ?? urn;

/** List properties the PostgreSQL provider returns as `null` when they are empty. */
const PROVIDER_LISTS: Readonly<Record<string, readonly string[]>> = {
  "postgresql:index/grant:Grant": ["privileges", "objects", "columns"],
  "postgresql:index/defaultPrivileges:DefaultPrivileges": ["privileges"],
};

/**
 * The provider normalizes an empty list to `null` in what it returns (a revoke-everything grant's
 * `privileges: []` comes back as `null`), and the engine hands the pack those values: every
 * source is read the same way, so an export, synth output and the engine decide alike.
 */
function providerNormalized(type: string, props: Record<string, unknown>): Record<string, unknown> {
  const lists = PROVIDER_LISTS[type];
  if (!lists) return props;
  const out = { ...props };
  for (const k of lists) if (out[k] === null || out[k] === undefined) out[k] = [];
  return out;
}
const providerUrn = (ref: unknown) => (typeof ref === "string" && ref !== "" ? ref.split("::").slice(0, -1).join("::") : null);

interface ExportedResource {
  urn: string;
  type: string;
  protect?: boolean;
  inputs?: Record<string, unknown>;
  parent?: string;
  provider?: string;
}

/** A `pulumi stack export` document (deployment version 3). */
export function fromStackExport(doc: { deployment?: { resources?: ExportedResource[] } }): StackInput {
  const resources = doc.deployment?.resources;
  if (!Array.isArray(resources)) throw new StateFormatError("not a stack export: no deployment.resources");
  return {
    secretsVisible: true,
    resources: resources.map((r) => ({
      type: r.type,
      name: nameOf(r.urn),
      urn: r.urn,
      parent: r.parent || null,
      provider: providerUrn(r.provider),
      props: providerNormalized(r.type, normalize(r.inputs ?? {}) as Record<string, unknown>),
      ...(r.protect ? { protect: true } : {}),
    })),
  };
}

/** `db-platform synth --json` output. */
export function fromSynth(resources: readonly PolicyInputResource[]): StackInput {
  for (const r of resources) {
    if (typeof r?.urn !== "string" || typeof r.type !== "string" || typeof r.props !== "object") {
      throw new StateFormatError("not synth output: each entry needs type, name, urn, parent, provider and props");
    }
  }
  return {
    secretsVisible: true,
    resources: resources.map((r) => ({ ...r, props: providerNormalized(r.type, normalize(r.props) as Record<string, unknown>) })),
  };
}

/** Either document, detected by shape. */
export function fromStateDocument(doc: unknown): StackInput {
  if (Array.isArray(doc)) return fromSynth(doc as PolicyInputResource[]);
  if (doc && typeof doc === "object" && "deployment" in doc)
    return fromStackExport(doc as { deployment?: { resources?: ExportedResource[] } });
  throw new StateFormatError("expected a `pulumi stack export` document or `db-platform synth --json` output");
}

/** The subset of @pulumi/policy's PolicyResource the adapter reads. */
export interface PreviewResource {
  type: string;
  name: string;
  urn: string;
  props: Record<string, unknown>;
  parent?: { urn: string };
  provider?: { urn: string };
  opts?: { protect?: boolean };
}

/** Copy values out of @pulumi/policy's unknown-checking proxy, marking unknowns instead of throwing. */
function copyKnown(v: unknown): unknown {
  if (Array.isArray(v)) return v.map((_, i) => read(() => v[i]));
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) out[k] = read(() => (v as Record<string, unknown>)[k]);
    return out;
  }
  return v;
}

function read(get: () => unknown): unknown {
  try {
    return copyKnown(get());
  } catch (e) {
    if (e instanceof UnknownValueError) return UNKNOWN;
    throw e;
  }
}

/** @pulumi/policy resources during `pulumi preview`/`up`, where secrets are already unwrapped. */
export function fromPreview(resources: readonly PreviewResource[]): StackInput {
  return {
    secretsVisible: false,
    resources: resources.map((r) => ({
      type: r.type,
      name: r.name,
      urn: r.urn,
      parent: r.parent?.urn ?? null,
      provider: r.provider?.urn ?? null,
      props: providerNormalized(r.type, copyKnown(r.props) as Record<string, unknown>),
      ...(r.opts?.protect ? { protect: true } : {}),
    })),
  };
}
