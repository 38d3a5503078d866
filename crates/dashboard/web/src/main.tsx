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

const NAV: [string, string][] = [
  ['containers', 'Containers'],
  ['compose', 'Compose'],
  ['images', 'Images'],
  ['volumes', 'Volumes'],
  ['networks', 'Networks'],
  ['events', 'Events'],
  ['disk', 'Disk use'],
];

function App() {
  const [section = 'containers', ...rest] = useRoute();
  let page;
  switch (section) {
    case 'containers':
      page = rest[0] ? <ContainerPage key={rest[0]} id={rest[0]} tab={rest[1]} /> : <ContainersPage />;
      break;
    case 'images':
      page = rest.length ? <ImagePage key={rest.join('/')} name={rest.join('/')} /> : <ImagesPage />;
      break;
    case 'compose':
      page = <ComposePage />;
      break;
    case 'volumes':
      page = <VolumesPage />;
      break;
    case 'networks':
      page = <NetworksPage />;
      break;
    case 'events':
      page = <EventsPage />;
      break;
    case 'disk':
      page = <DiskPage />;
      break;
    default:
      page = <p>No page here.</p>;
  }
  return (
    <div class="shell">
      <nav class="side">
        <div class="brand">berth</div>
        {NAV.map(([k, label]) => (
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
