/**
 * What a session must do when libdatachannel reports its PeerConnection
 * `failed` or `closed` although the worker did not close it.
 *
 * Why this happens although we only want ICE: libdatachannel starts DTLS as
 * soon as ICE connects, and its setRemoteDescription hands the ICE credentials
 * to libjuice before it stores the description the DTLS fingerprint check
 * reads. On the offerer, whose peer is already checking when the answer comes,
 * ICE and the peer's DTLS handshake can complete inside that gap (the main
 * thread only has to be descheduled for a few ms): the fingerprint check finds
 * no remote description, DTLS fails, and libdatachannel closes the whole
 * PeerConnection. node-datachannel then drops the still-queued ICE `connected`
 * callback, so without this the session waited out its timeout and blamed ICE.
 */

export type PeerConnectionLostAction =
	/** ICE is still readable as connected: report the selected pair now. */
	| { kind: "report-connected" }
	/** The PC is gone: fail the session now, saying why. */
	| { kind: "fail"; reason: string }
	/** Nothing to do (an outcome was reported, or the state is not terminal). */
	| { kind: "ignore" };

export function onPeerConnectionLost(
	pcState: string,
	iceState: string,
	outcomeReported: boolean,
): PeerConnectionLostAction {
	if (outcomeReported || (pcState !== "failed" && pcState !== "closed")) return { kind: "ignore" };
	if (iceState === "connected" || iceState === "completed") return { kind: "report-connected" };
	// ICE itself failed (libdatachannel fails the PC with it): say so, as the ICE callback would.
	if (iceState === "failed") return { kind: "fail", reason: "ice failed" };
	return {
		kind: "fail",
		reason: `peer connection ${pcState} before ice reported connected (ice ${iceState}; libdatachannel closes it when DTLS fails)`,
	};
}
