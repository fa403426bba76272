import * as grpc from "@grpc/grpc-js";
import { DaemonServiceClient } from "../../packages/proto/dist/gen/starling/v1/daemon.js";

globalThis.x = [grpc, DaemonServiceClient];
