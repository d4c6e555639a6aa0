/** The public methods of `T` (what a store part offers its whole). */
export type Methods<T> = { [K in keyof T]: T[K] extends (...args: never[]) => unknown ? K : never }[keyof T];

/**
 * A store part's methods, bound to it: `names` lists every public method (the compiler checks the
 * list against the part, none missed, none extra), so a store composed of parts answers each
 * method from the file that part names.
 */
export function methodsOf<T extends object>(part: T, names: Record<Methods<T>, true>): Pick<T, Methods<T>> {
  return Object.fromEntries(Object.keys(names).map((name) => [name, (part[name as keyof T] as (...a: unknown[]) => unknown).bind(part)])) as Pick<T, Methods<T>>;
}
