export { CloseCode, type CloseCodeValue, needsNewToken } from "./close-codes.js";
export {
	DATA_HEADER_BYTES,
	type EncodeResult,
	encodeData,
	encodeFrame,
	type Frame,
	type FrameError,
	type FrameErrorCode,
	FrameType,
	MAX_ERROR_MESSAGE_BYTES,
	MAX_FRAME_BYTES,
	MAX_PAYLOAD_BYTES,
	MAX_TOKEN_FRAME_BYTES,
	type ParseResult,
	PROTOCOL_VERSION,
	parseFrame,
} from "./frame.js";
export {
	decodeBase64Key,
	PEER_ID_BYTES,
	PUBLIC_KEY_BYTES,
	peerIdHex,
	peerIdOf,
} from "./peer-id.js";
export {
	issueRelayCredential,
	issueRelayToken,
	MIN_SECRET_BYTES,
	type RelayCredential,
	type RelaySecret,
	TOKEN_BYTES,
	TOKEN_LENGTH,
	TOKEN_VERSION,
	type TokenRefusal,
	type TokenVerification,
	verifyRelayToken,
} from "./token.js";
