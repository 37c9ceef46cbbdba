import { AppData } from './common';
import type { Producer } from './Producer';
import { RtpObserver, RtpObserverEvents, RtpObserverObserverEvents, RtpObserverType } from './RtpObserver';

export type AudioLevelObserverOptions<AudioLevelObserverAppData extends AppData = AppData> = {
	maxEntries?: number;
	threshold?: number;
	interval?: number;
	appData?: AudioLevelObserverAppData;
};

export type AudioLevelObserverVolume = { producer: Producer; volume: number };

export type AudioLevelObserverEvents = RtpObserverEvents & {
	volumes: [AudioLevelObserverVolume[]];
	silence: [];
};

export type AudioLevelObserverObserverEvents = RtpObserverObserverEvents & {
	volumes: [AudioLevelObserverVolume[]];
	silence: [];
};

export class AudioLevelObserver<AudioLevelObserverAppData extends AppData = AppData> extends RtpObserver<
	AudioLevelObserverAppData,
	AudioLevelObserverEvents,
	AudioLevelObserverObserverEvents
> {
	get type(): RtpObserverType {
		return 'audiolevel';
	}

	/** @internal `rtpObserver.volumes {rtpObserverId, volumes: [{producerId, volume}]}`, `rtpObserver.silence`. */
	protected handleNotification(event: string, params: Record<string, any>): void {
		if (event === 'silence') {
			this.emitEvent('silence');
			this.emitObserver('silence');
			return;
		}
		if (event !== 'volumes' || !Array.isArray(params.volumes)) return;
		const volumes: AudioLevelObserverVolume[] = [];
		for (const { producerId, volume } of params.volumes) {
			const producer = this.getProducerById(producerId);
			if (producer) volumes.push({ producer, volume });
		}
		if (volumes.length === 0) return;
		this.emitEvent('volumes', volumes);
		this.emitObserver('volumes', volumes);
	}
}
