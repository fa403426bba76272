import * as http2 from "node:http2";
import { DaemonStatus } from "../../packages/proto/dist/gen/starling/v1/daemon.js";

globalThis.x = [http2, DaemonStatus];
