export {
	CONFIG_FILE_VARIABLE,
	ConfigError,
	readConfigFile,
	resolveSettings,
} from "./config-file.js";
export { errorJson, respond } from "./http-answer.js";
export { type ListenAddress, parseListenAddress } from "./listen-address.js";
export {
	counterFromStats,
	createMetricsRegistry,
	exposeMetrics,
	gaugeFromStats,
	labelledCounterFromStats,
	labelledGaugeFromStats,
	type MetricsRegistry,
} from "./metrics.js";
export {
	type CheckResult,
	check,
	evaluateHealth,
	type HealthAnswer,
	type HealthChecks,
	type OpsServer,
	type OpsServerOptions,
	startOpsServer,
} from "./ops-server.js";
export { parsePrometheusText } from "./prometheus-text.js";
export { type Closable, runService, type ServiceOptions } from "./run-service.js";
export { loadTlsFiles, type TlsFileSettings, type TlsFiles } from "./tls-files.js";
