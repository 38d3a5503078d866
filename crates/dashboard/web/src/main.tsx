// berth's dashboard: the shell (navigation, notes) and the route → page table.

import { render } from 'preact';
import { takeKey } from './api';
import { useRoute, href } from './router';
import { Notes } from './ui';
import { ContainersPage } from './pages/Containers';
import { ContainerPage } from './pages/Container';
import { ImagesPage } from './pages/Images';
import { ImagePage } from './pages/Image';
import { ComposePage } from './pages/Compose';
import { VolumesPage, NetworksPage, EventsPage, DiskPage } from './pages/Resources';
import './style.css';

takeKey();

/** The sections: route word, title in the navigation, page (given the rest of the route). */
const SECTIONS: [string, string, (rest: string[]) => preact.JSX.Element][] = [
  ['containers', 'Containers', (r) => (r[0] ? <ContainerPage key={r[0]} id={r[0]} tab={r[1]} /> : <ContainersPage />)],
  ['compose', 'Compose', () => <ComposePage />],
  ['images', 'Images', (r) => (r.length ? <ImagePage key={r.join('/')} name={r.join('/')} /> : <ImagesPage />)],
  ['volumes', 'Volumes', () => <VolumesPage />],
  ['networks', 'Networks', () => <NetworksPage />],
  ['events', 'Events', () => <EventsPage />],
  ['disk', 'Disk use', () => <DiskPage />],
];

function App() {
  const [section = 'containers', ...rest] = useRoute();
  const found = SECTIONS.find(([k]) => k === section);
  const page = found ? found[2](rest) : <p>No page here.</p>;
  return (
    <div class="shell">
      <nav class="side">
        <div class="brand">berth</div>
        {SECTIONS.map(([k, label]) => (
          <a key={k} href={href(k)} class={section === k ? 'on' : ''} data-nav={k}>
            {label}
          </a>
        ))}
      </nav>
      <main>{page}</main>
      <Notes />
    </div>
  );
}

render(<App />, document.getElementById('app')!);
