import { InvalidStateError } from './errors';

export type AppData = { [key: string]: unknown };

/** mediasoup's check: appData, when given, is a plain object. */
export function checkAppData(appData: unknown): void {
	if (appData !== undefined && (appData === null || typeof appData !== 'object' || Array.isArray(appData))) {
		throw new TypeError('if given, appData must be an object');
	}
}

/** Calls on a closed object throw InvalidStateError (the server would refuse them anyway). */
export function checkOpen(closed: boolean, what: string): void {
	if (closed) throw new InvalidStateError(`${what} closed`);
}

/** Fire-and-forget: close() is synchronous in mediasoup, its request's outcome is not awaited. */
export function sendAndForget(promise: Promise<unknown>): void {
	promise.catch(() => {});
}

/** A result that is either `{key: value}` or the bare value (or null for a void answer). */
export function unwrap<T>(result: unknown, key: string): T | undefined {
	if (result === null || result === undefined) return undefined;
	if (typeof result === 'object' && key in (result as object)) return (result as Record<string, T>)[key];
	return result as T;
}

/** The server's answer over defaults known locally (fields the answer leaves out keep the default). */
export function withDefaults<T extends object>(defaults: Partial<T>, answer: T): T {
	const out = { ...defaults } as Record<string, unknown>;
	for (const [k, v] of Object.entries(answer)) if (v !== undefined && v !== null) out[k] = v;
	return out as T;
}
