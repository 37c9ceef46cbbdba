/**
 * mediasoup's `types`: the classes, the error classes and the type names
 * (`import { types } from 'shardsfu-client'`, then `types.Router`, `types.RtpCapabilities`, ...).
 */
export type * from './rtpParameters';
export type * from './common';
export type * from './channel';
export type * from './Worker';
export type * from './WebRtcServer';
export type * from './Router';
export type * from './Transport';
export type * from './WebRtcTransport';
export type * from './PlainTransport';
export type * from './PipeTransport';
export type * from './DirectTransport';
export type * from './Producer';
export type * from './Consumer';
export type * from './DataProducer';
export type * from './DataConsumer';
export type * from './RtpObserver';
export type * from './ActiveSpeakerObserver';
export type * from './AudioLevelObserver';

export { UnsupportedError, InvalidStateError } from './errors';
export { Worker } from './Worker';
export { WebRtcServer } from './WebRtcServer';
export { Router } from './Router';
export { Transport } from './Transport';
export { WebRtcTransport } from './WebRtcTransport';
export { PlainTransport } from './PlainTransport';
export { PipeTransport } from './PipeTransport';
export { DirectTransport } from './DirectTransport';
export { Producer } from './Producer';
export { Consumer } from './Consumer';
export { DataProducer } from './DataProducer';
export { DataConsumer } from './DataConsumer';
export { RtpObserver } from './RtpObserver';
export { ActiveSpeakerObserver } from './ActiveSpeakerObserver';
export { AudioLevelObserver } from './AudioLevelObserver';
export { EnhancedEventEmitter } from './enhancedEvents';
