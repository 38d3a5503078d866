// Volumes and networks, each with the containers that use it; events; disk use with prune.

import { useEffect, useState } from 'preact/hooks';
import { get, post, del, bytes, jsonStream, DaemonError } from '../api';
import { nameOf, Summary } from '../live';
import { href } from '../router';
import { Action, Failure, notify, Page, useLoad, Table, Remove } from '../ui';
import { useContainers } from './Containers';

/** The containers that use a volume or network: running ones first, a dozen at most. */
function Users(props: { cs: Summary[] }) {
  const MAX = 12;
  const cs = [...props.cs].sort((a, b) => Number(b.State === 'running') - Number(a.State === 'running') || nameOf(a).localeCompare(nameOf(b)));
  return (
    <>
      {cs.slice(0, MAX).map((c) => (
        <a key={c.Id} class="user" href={href('containers', c.Id)}>
          {nameOf(c)}
        </a>
      ))}
      {cs.length > MAX ? <span class="dim">and {cs.length - MAX} more</span> : null}
    </>
  );
}

export function VolumesPage() {
  const store = useContainers();
  const { data, error, reload } = useLoad<any>(() => get('/volumes'), []);
  const users = (name: string) => [...store.rows.values()].filter((c: any) => (c.Mounts ?? []).some((m: any) => m.Name === name));
  return (
    <Page title="Volumes" actions={<Action name="prune" danger action={() => prune('volumes').then(reload)}>Prune unused</Action>}>
      <Failure error={error} />
      <Table heads={['Name', 'Driver', 'Mount point', 'Used by', '']}>
          {(data?.Volumes ?? []).map((v: any) => (
            <tr key={v.Name} data-volume={v.Name}>
              <td class="mono">{v.Name}</td>
              <td>{v.Driver}</td>
              <td class="mono dim">{v.Mountpoint}</td>
              <td>
                <Users cs={users(v.Name)} />
              </td>
              <td>
                <Remove action={() => del(`/volumes/${encodeURIComponent(v.Name)}`).then(reload)} />
              </td>
            </tr>
          ))}
        </Table>
    </Page>
  );
}

export function NetworksPage() {
  const { data, error, reload } = useLoad<any[]>(() => get('/networks'), []);
  const store = useContainers();
  return (
    <Page title="Networks" actions={<Action name="prune" danger action={() => prune('networks').then(reload)}>Prune unused</Action>}>
      <Failure error={error} />
      <Table heads={['Name', 'Driver', 'Subnet', 'Used by', '']}>
          {(data ?? []).map((n: any) => (
            <tr key={n.Id} data-network={n.Name}>
              <td class="mono">{n.Name}</td>
              <td>{n.Driver}</td>
              <td class="mono">{(n.IPAM?.Config ?? []).map((c: any) => c.Subnet).join(', ')}</td>
              <td>
                <Users cs={[...store.rows.values()].filter((c: any) => c.NetworkSettings?.Networks?.[n.Name])} />
              </td>
              <td>
                {['bridge', 'host', 'none'].includes(n.Name) ? null : (
                  <Remove action={() => del(`/networks/${n.Id}`).then(reload)} />
                )}
              </td>
            </tr>
          ))}
        </Table>
    </Page>
  );
}

async function prune(what: 'containers' | 'images' | 'volumes' | 'networks' | 'build'): Promise<void> {
  const r: any = await post(what === 'build' ? '/build/prune' : `/${what}/prune`);
  const gone = r?.ContainersDeleted ?? r?.ImagesDeleted ?? r?.VolumesDeleted ?? r?.NetworksDeleted ?? r?.CachesDeleted ?? [];
  notify(`Pruned ${gone.length} ${what === 'build' ? 'cache record(s)' : what}${r?.SpaceReclaimed !== undefined ? `, reclaimed ${bytes(r.SpaceReclaimed)}` : ''}`, 'info');
}

export function EventsPage() {
  const [events, setEvents] = useState<any[]>([]);
  const [error, setError] = useState<DaemonError | null>(null);
  useEffect(() => {
    // The last hour's events, then new ones as they come.
    const since = Math.floor(Date.now() / 1000) - 3600;
    const s = jsonStream(`/events?since=${since}`, (e) => setEvents((es) => [e, ...es].slice(0, 1000)), setError);
    return () => s.close();
  }, []);
  return (
    <Page title="Events">
      <Failure error={error} />
      <Table class="events" heads={['Time', 'Type', 'Action', 'Object', 'Attributes']}>
          {events.map((e, i) => (
            <tr key={`${e.timeNano}-${i}`} data-action={e.Action}>
              <td>{new Date((e.timeNano ?? e.time * 1e9) / 1e6).toLocaleTimeString()}</td>
              <td>{e.Type}</td>
              <td>{e.Action}</td>
              <td class="mono">{e.Actor?.Attributes?.name ?? (e.Actor?.ID ?? '').slice(0, 12)}</td>
              <td class="mono dim">
                <Attributes a={e.Actor?.Attributes ?? {}} />
              </td>
            </tr>
          ))}
        </Table>
    </Page>
  );
}

/** An event's attributes, compose's many labels counted rather than listed. */
function Attributes(props: { a: Record<string, string> }) {
  const all = Object.entries(props.a).filter(([k]) => k !== 'name');
  const compose = all.filter(([k]) => k.startsWith('com.docker.compose.')).length;
  const shown = all.filter(([k]) => !k.startsWith('com.docker.compose.')).map(([k, v]) => `${k}=${v}`);
  if (compose) shown.push(`(+${compose} compose labels)`);
  return <>{shown.join(' ')}</>;
}

export function DiskPage() {
  const { data, error, reload } = useLoad<any>(() => get('/system/df'), []);
  const sum = (xs: any[] | undefined, f: (x: any) => number) => (xs ?? []).reduce((a, x) => a + (f(x) || 0), 0);
  const rows: [string, 'images' | 'containers' | 'volumes' | 'build', number, number][] = data
    ? [
        ['Images', 'images', (data.Images ?? []).length, sum(data.Images, (i) => i.Size)],
        ['Containers', 'containers', (data.Containers ?? []).length, sum(data.Containers, (c) => c.SizeRw)],
        ['Local volumes', 'volumes', (data.Volumes ?? []).length, sum(data.Volumes, (v) => v.UsageData?.Size)],
        ['Build cache', 'build', (data.BuildCache ?? []).length, sum(data.BuildCache, (b) => b.Size)],
      ]
    : [];
  return (
    <Page title="Disk use">
      <Failure error={error} />
      <Table class="disk" heads={['Type', 'Total', 'Size', '']}>
          {rows.map(([label, what, n, size]) => (
            <tr key={what} data-kind={what}>
              <td>{label}</td>
              <td>{n}</td>
              <td>{bytes(size)}</td>
              <td>
                <Action name={`prune-${what}`} danger action={() => prune(what).then(reload)}>
                  Prune
                </Action>
              </td>
            </tr>
          ))}
        </Table>
    </Page>
  );
}

export { notify };
