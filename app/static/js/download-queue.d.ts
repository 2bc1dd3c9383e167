// Types of download-queue.js (a plain script: it defines window.joinQueue and window.DownloadQueue).

export interface QueuePosition {
  /** null: pre-queued for the file's scheduled release (a random place is drawn at release_at). */
  position: number | null;
  /** With position null: the release time (ISO 8601) and how many wait for releases. */
  release_at?: string;
  prequeued?: number;
  waiting: number;
  active: number;
  capacity: number;
  /** Seconds until this place is admitted; null while nothing at all is known, 0 when a slot is free. */
  eta_seconds: number | null;
  /** "paused" while operators hold admissions (the place is kept). */
  mode: "open" | "paused" | "draining";
}

export interface QueueReady {
  download_url: string;
  /** Start the download before this (ISO 8601) or the slot goes to the next person. */
  admit_deadline: string;
  token: string;
  status_url: string;
}

export interface DownloadProgress {
  state: "ready" | "downloading";
  /** Bytes the browser acknowledged, as the server counts them. */
  bytes: number;
  size: number;
  rate_bytes_per_second: number;
  eta_seconds: number | null;
}

export interface DownloadDone {
  bytes: number;
  size: number;
  /** Compare with the saved file. */
  sha256: string;
}

export interface QueueError {
  code: string;
  message: string;
  retry_after?: number;
  position?: number;
}

/** `following`: true in a tab that follows another tab of the same file (that tab streams and
 * downloads; this one hears what it hears). */
export interface QueueHandlers {
  onPosition?(view: QueuePosition, following: boolean): void;
  onReady?(ready: QueueReady, following: boolean): void;
  onProgress?(progress: DownloadProgress, following: boolean): void;
  onDone?(done: DownloadDone, following: boolean): void;
  /** `place_lapsed` (away longer than AWAY_GRACE) and `turn_missed` say what happened while away */
  onError?(error: QueueError, following: boolean): void;
  onState?(state: "joining" | "waiting" | "reconnecting" | "disconnected", following: boolean): void;
  /** another tab of this file left the line or cancelled the download */
  onLeft?(nothing: null, following: boolean): void;
}

export interface Ticket {
  token: string;
  file_id: number;
  expires_at: string;
  queue_url: string;
  status_url: string;
  download_url: string;
}

export interface Place {
  readonly token: string | null;
  /** Stop listening (the place is kept for the server's wait grace). */
  close(): void;
  /** Forget the saved ticket (a reload will not re-attach). */
  forget(): void;
  /** Give the place, or the download's slot, back. */
  leave(): Promise<{ left: boolean; previous_state: string } | null>;
}

export declare function joinQueue(fileId: number | string, handlers?: QueueHandlers,
                                  options?: { apiKey?: string }): Place;

declare global {
  interface Window {
    joinQueue: typeof joinQueue;
    DownloadQueue: {
      joinQueue: typeof joinQueue;
      issueToken(fileId: number | string, apiKey?: string): Promise<Ticket>;
      savedTicket(fileId: number | string): Ticket | null;
      forgetTicket(fileId: number | string): void;
    };
  }
}
