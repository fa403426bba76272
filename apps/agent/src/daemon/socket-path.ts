/** Where the daemon serves the CLI's DaemonService (gRPC on a unix socket, mode 0600). */
export const DEFAULT_SOCKET_PATH = "/var/run/starling.sock";
