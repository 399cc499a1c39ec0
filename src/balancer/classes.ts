// Weight classes, Finagle's TrafficDistributor: endpoints of equal weight form a class, and a
// class is drawn with probability ∝ weight × members (Drv.fromWeights). Traffic shares then
// follow weights whatever the load, because load never decides *which class*; it decides
// only which member of the class (least-loaded P2C, p2c.ts). Pure. native/pick.c executes the
// same policy in C for the engine's threads; test/fixtures/pick-vectors.json holds both to it.
import { type Candidate, pickP2C } from './p2c.ts';

export interface WeightClass<T> {
  /** The weight of each member. */
  readonly weight: number;
  /** weight × members.length: the class's share of traffic, unnormalised. */
  readonly total: number;
  readonly members: readonly T[];
}

/** Weights closer than this (relative) are one class: flattened dtab weights are floats. */
const SAME = 1e-9;

/** Groups positive-weight items by weight, in order of first appearance; weight 0 is left out. */
export function weightClasses<T extends { readonly weight: number }>(items: readonly T[]): WeightClass<T>[] {
  const groups: { weight: number; members: T[] }[] = [];
  for (const it of items) {
    const w = it.weight;
    if (!(w > 0)) continue;
    const g = groups.find((x) => Math.abs(x.weight - w) <= SAME * Math.max(x.weight, w));
    if (g) g.members.push(it);
    else groups.push({ weight: w, members: [it] });
  }
  return groups.map((g) => ({ weight: g.weight, total: g.weight * g.members.length, members: g.members }));
}

/**
 * Index of a class drawn ∝ `total`, or -1 when there is none or the draw lands on `empty`:
 * the share (in the classes' units) of union branches bound to no endpoints, which Finagle's
 * NameTreeFactory draws like any branch. Calls `random()` once (none for one class and no empty share).
 */
export function pickClass(classes: readonly WeightClass<unknown>[], random: () => number, empty = 0): number {
  const withEmpty = empty > 0;
  if (classes.length === 0 || (classes.length === 1 && !withEmpty)) return classes.length - 1;
  let sum = withEmpty ? empty : 0;
  for (const c of classes) sum += c.total;
  let r = random() * sum;
  for (let i = 0; i < classes.length; i++) {
    const t = classes[i]!.total;
    if (r < t) return i;
    r -= t;
  }
  return withEmpty ? -1 : classes.length - 1; // the empty share is drawn last; else a floating-point remainder
}

/**
 * The pick: a class drawn by `pickClass` (with the `empty` share), then least-loaded P2C
 * among its members; undefined when there is no class or the draw lands on the empty share.
 */
export function pickFrom<T extends Candidate>(classes: readonly WeightClass<T>[], random: () => number, empty = 0): T | undefined {
  const c = pickClass(classes, random, empty);
  if (c < 0) return undefined;
  const members = classes[c]!.members;
  return members[pickP2C(members, random)];
}
