//! The receiver of a consumer sees one continuous sequence across pauses, resumes, reordering
//! and duplicates (the consumer's `SeqManager`).

mod common;

use common::*;

/// Output sequence numbers sent to consumer `i` since the last `take`.
fn out_seqs(sfu: &mut Sfu, i: usize) -> Vec<u16> {
    sfu.take_rtp_to(i).iter().map(|d| d.rtp().sequence_number).collect()
}

fn assert_continuous(seqs: &[u16]) {
    for pair in seqs.windows(2) {
        assert_eq!(pair[1], pair[0].wrapping_add(1), "gap or jump in {seqs:?}");
    }
}

#[test]
fn consumer_pause_resume_keeps_output_continuous_and_waits_for_key_frame() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    let id = sfu.consumers[0].id;
    for seq in 100..110u16 {
        sfu.send_media(seq, seq == 100);
    }
    let before = out_seqs(&mut sfu, 0);
    assert_eq!(before.len(), 10);
    assert_continuous(&before);

    sfu.shard.pause_consumer(id).unwrap();
    for seq in 110..130u16 {
        sfu.send_media(seq, false);
    }
    assert!(out_seqs(&mut sfu, 0).is_empty());
    assert_eq!(sfu.shard.drops().consumer_inactive, 20);

    let now = sfu.now;
    sfu.shard.resume_consumer(now, id).unwrap();
    // Delta frames after the resume are held back until a key frame.
    for seq in 130..135u16 {
        sfu.send_media(seq, false);
    }
    assert!(out_seqs(&mut sfu, 0).is_empty());
    assert_eq!(sfu.shard.drops().not_a_key_frame, 5);
    for seq in 135..140u16 {
        sfu.send_media(seq, seq == 135);
    }
    let after = out_seqs(&mut sfu, 0);
    assert_eq!(after.len(), 5);
    let mut all = before.clone();
    all.extend(&after);
    assert_continuous(&all);
}

#[test]
fn producer_pause_resume_keeps_output_continuous() {
    let mut sfu = Sfu::new(Options { consumers: 2, ..Options::default() });
    for seq in 1..6u16 {
        sfu.send_media(seq, seq == 1);
    }
    let before: Vec<Vec<u16>> = {
        let out = sfu.take();
        sfu.consumers
            .iter()
            .map(|c| out.iter().filter(|d| d.dest == c.remote).map(|d| d.rtp().sequence_number).collect())
            .collect()
    };
    sfu.shard.pause_producer(PRODUCER).unwrap();
    let events = sfu.events();
    assert_eq!(events.len(), 2, "producerpause for each consumer: {events:?}");
    for seq in 6..50u16 {
        sfu.send_media(seq, seq == 20);
    }
    assert!(sfu.take().is_empty());
    assert_eq!(sfu.shard.drops().producer_paused, 44);
    let now = sfu.now;
    sfu.shard.resume_producer(now, PRODUCER).unwrap();
    sfu.send_media(50, false);
    sfu.send_media(51, true);
    sfu.send_media(52, false);
    let out = sfu.take();
    for (i, c) in sfu.consumers.iter().enumerate() {
        let mut seqs = before[i].clone();
        seqs.extend(out.iter().filter(|d| d.dest == c.remote).map(|d| d.rtp().sequence_number));
        assert_eq!(seqs.len(), 5 + 2);
        assert_continuous(&seqs);
    }
}

#[test]
fn audio_resume_needs_no_key_frame() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::audio() });
    let id = sfu.consumers[0].id;
    for seq in 0..3u16 {
        sfu.send_media(seq, false);
    }
    sfu.shard.pause_consumer(id).unwrap();
    for seq in 3..10u16 {
        sfu.send_media(seq, false);
    }
    let now = sfu.now;
    sfu.shard.resume_consumer(now, id).unwrap();
    for seq in 10..13u16 {
        sfu.send_media(seq, false);
    }
    let seqs = out_seqs(&mut sfu, 0);
    assert_eq!(seqs.len(), 6);
    assert_continuous(&seqs);
    assert_eq!(sfu.shard.drops().not_a_key_frame, 0);
}

#[test]
fn reordered_input_keeps_its_slot() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    sfu.send_media(10, true);
    sfu.send_media(11, false);
    sfu.send_media(13, false);
    sfu.send_media(12, false);
    sfu.send_media(14, false);
    let seqs = out_seqs(&mut sfu, 0);
    let o = seqs[0];
    assert_eq!(seqs, vec![o, o + 1, o + 3, o + 2, o + 4]);
}

#[test]
fn duplicate_input_is_forwarded_with_the_same_output_seq() {
    // SeqManager maps a repeated input to the output it had: the receiver drops the duplicate.
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    sfu.send_media(10, true);
    sfu.send_media(11, false);
    sfu.send_media(11, false);
    sfu.send_media(12, false);
    let seqs = out_seqs(&mut sfu, 0);
    let o = seqs[0];
    assert_eq!(seqs, vec![o, o + 1, o + 1, o + 2]);
    assert_eq!(sfu.shard.drops().sequence_rejected, 0);
}

#[test]
fn input_from_before_the_resume_point_is_rejected() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    let id = sfu.consumers[0].id;
    sfu.send_media(10, true);
    sfu.shard.pause_consumer(id).unwrap();
    let now = sfu.now;
    sfu.shard.resume_consumer(now, id).unwrap();
    sfu.send_media(20, true);
    let _ = out_seqs(&mut sfu, 0);
    // 19 arrives late: it belongs before the new segment.
    sfu.send_media(19, false);
    assert!(out_seqs(&mut sfu, 0).is_empty());
    assert_eq!(sfu.shard.drops().sequence_rejected, 1);
}

#[test]
fn far_too_old_input_is_rejected() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::audio() });
    sfu.send_media(0, false);
    sfu.send_media(3000, false);
    let _ = out_seqs(&mut sfu, 0);
    sfu.send_media(3000 - shardsfu_engine::rtp::MAX_SEQ_REORDER - 1, false);
    assert!(out_seqs(&mut sfu, 0).is_empty());
    assert_eq!(sfu.shard.drops().sequence_rejected, 1);
}

#[test]
fn input_sequence_wrap_is_invisible() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    for seq in [65533u16, 65534, 65535, 0, 1, 2] {
        sfu.send_media(seq, seq == 65533);
    }
    let seqs = out_seqs(&mut sfu, 0);
    assert_eq!(seqs.len(), 6);
    assert_continuous(&seqs);
}
