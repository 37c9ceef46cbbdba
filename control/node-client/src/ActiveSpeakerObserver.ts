import { AppData } from './common';
import type { Producer } from './Producer';
import { RtpObserver, RtpObserverEvents, RtpObserverObserverEvents, RtpObserverType } from './RtpObserver';

export type ActiveSpeakerObserverOptions<ActiveSpeakerObserverAppData extends AppData = AppData> = {
	interval?: number;
	appData?: ActiveSpeakerObserverAppData;
};

export type ActiveSpeakerObserverDominantSpeaker = { producer: Producer };

export type ActiveSpeakerObserverEvents = RtpObserverEvents & {
	dominantspeaker: [ActiveSpeakerObserverDominantSpeaker];
};

export type ActiveSpeakerObserverObserverEvents = RtpObserverObserverEvents & {
	dominantspeaker: [ActiveSpeakerObserverDominantSpeaker];
};

export class ActiveSpeakerObserver<ActiveSpeakerObserverAppData extends AppData = AppData> extends RtpObserver<
	ActiveSpeakerObserverAppData,
	ActiveSpeakerObserverEvents,
	ActiveSpeakerObserverObserverEvents
> {
	get type(): RtpObserverType {
		return 'activespeaker';
	}

	/** @internal `rtpObserver.dominantspeaker {rtpObserverId, producerId}`. */
	protected handleNotification(event: string, params: Record<string, any>): void {
		if (event !== 'dominantspeaker') return;
		const producer = this.getProducerById(params.producerId);
		if (!producer) return;
		const dominantSpeaker = { producer };
		this.emitEvent('dominantspeaker', dominantSpeaker);
		this.emitObserver('dominantspeaker', dominantSpeaker);
	}
}
