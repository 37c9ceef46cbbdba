/**
 * mediasoup's error classes. `TypeError` is the built-in one.
 *
 * Errors answered by the server carry the class in `error.data.name` (see PROTOCOL.md) and are
 * rethrown as that class with the server's message.
 */

/** The call is not supported (by mediasoup, or by this engine). */
export class UnsupportedError extends Error {
	constructor(message?: string) {
		super(message);
		this.name = 'UnsupportedError';
		Error.captureStackTrace?.(this, UnsupportedError);
	}
}

/** The call is not valid in the object's current state (e.g. it is closed). */
export class InvalidStateError extends Error {
	constructor(message?: string) {
		super(message);
		this.name = 'InvalidStateError';
		Error.captureStackTrace?.(this, InvalidStateError);
	}
}

/** A JSON-RPC error object as the server sends it. */
export interface WireError {
	code: number;
	message: string;
	data?: { name?: string };
}

/** The error class named by a server error (`data.name`), built with the server's message. */
export function errorFromWire(method: string, error: WireError): Error {
	const message = typeof error?.message === 'string' ? error.message : `${method} failed`;
	switch (error?.data?.name) {
		case 'TypeError':
			return new TypeError(message);
		case 'UnsupportedError':
			return new UnsupportedError(message);
		case 'InvalidStateError':
			return new InvalidStateError(message);
		default: {
			const err = new Error(message) as Error & { code?: number };
			err.code = error?.code;
			return err;
		}
	}
}
