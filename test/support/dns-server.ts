// A real DNS server on 127.0.0.1 (UDP, in-process, the `dns2` package) serving SRV and A
// records that tests set and change, so the io.l5d.dnssrv namer is tested over the wire.
import dns2 from 'dns2';

export interface Srv {
  readonly priority: number;
  readonly weight: number;
  readonly port: number;
  readonly target: string;
}

type Resource = ReturnType<typeof dns2.Packet.createResponseFromRequest>['answers'][number];
/** dns2's typings demand toBuffer on records it encodes itself; plain records are what it takes. */
const rr = (r: object): Resource => r as unknown as Resource;

export class DnsServer {
  private readonly srv = new Map<string, Srv[]>();
  private readonly a = new Map<string, string[]>();
  private readonly queryListeners = new Set<(name: string) => void>();
  private readonly server: ReturnType<typeof dns2.createServer>;
  port = 0;

  private constructor() {
    const { Packet } = dns2;
    this.server = dns2.createServer({
      udp: true,
      handle: (request, send) => {
        const response = Packet.createResponseFromRequest(request);
        const q = request.questions[0];
        if (q) {
          const name = q.name.toLowerCase();
          for (const l of [...this.queryListeners]) l(name);
          if (q.type === Packet.TYPE.SRV) {
            for (const r of this.srv.get(name) ?? []) response.answers.push(rr({ name: q.name, type: Packet.TYPE.SRV, class: Packet.CLASS.IN, ttl: 1, ...r }));
          } else if (q.type === Packet.TYPE.A) {
            for (const address of this.a.get(name) ?? []) response.answers.push(rr({ name: q.name, type: Packet.TYPE.A, class: Packet.CLASS.IN, ttl: 1, address }));
          }
          if (response.answers.length === 0 && !this.srv.has(name) && !this.a.has(name)) response.header.rcode = Packet.RCODE.NXDOMAIN;
        }
        send(response);
      },
    });
  }

  static async start(): Promise<DnsServer> {
    const d = new DnsServer();
    await d.server.listen({ udp: { port: 0, address: '127.0.0.1' } });
    d.port = d.server.addresses().udp?.port ?? 0;
    return d;
  }

  /** Resolves when `n` more queries for `name` have arrived (each answered from the records set by then). */
  queries(name: string, n: number): Promise<void> {
    let left = n;
    return new Promise((resolve) => {
      const l = (q: string): void => {
        if (q !== name.toLowerCase() || --left > 0) return;
        this.queryListeners.delete(l);
        resolve();
      };
      this.queryListeners.add(l);
    });
  }

  setSrv(name: string, records: Srv[]): void {
    this.srv.set(name.toLowerCase(), records);
  }
  setA(name: string, addresses: string[]): void {
    this.a.set(name.toLowerCase(), addresses);
  }
  async close(): Promise<void> {
    await this.server.close();
  }
}
