export {
	CONFIG_FILE_VARIABLE,
	ConfigError,
	readConfigFile,
	resolveSettings,
} from "./config-file.js";
export { type Closable, runService, type ServiceOptions } from "./run-service.js";
